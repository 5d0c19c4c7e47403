package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// inputView is a view read from the input: the page (its record key), its ts and the line as it
// is (its record value).
type inputView struct {
	Page string
	TS   int64
	Line []byte
}

// readViews reads NDJSON views, one per line, in order. Blank lines are ignored. A line that is
// not a view - not JSON, not an object, or without a non-empty string "page" and an integer "ts"
// of at least 0 - is skipped and reported to skipped with its line number, so one bad line does
// not stop a batch; the app would also skip such a record (see main), but it could not be keyed
// by its page. A line longer than 1 MiB (Kafka's default record size limit) is an error.
func readViews(r io.Reader, skipped func(line int, err error)) ([]inputView, error) {
	var views []inputView
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		page, ts, err := parseView(line)
		if err != nil {
			skipped(n, err)
			continue
		}
		views = append(views, inputView{Page: page, TS: ts, Line: bytes.Clone(line)})
	}
	if err := sc.Err(); err != nil {
		return views, fmt.Errorf("reading line %d of the input: %w", n+1, err)
	}
	return views, nil
}

// parseView checks that line is a view as the app decodes it (encoding/json into View) and
// returns its page and ts.
func parseView(line []byte) (string, int64, error) {
	var v struct {
		Page *string `json:"page"`
		TS   *int64  `json:"ts"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return "", 0, err
	}
	switch {
	case v.Page == nil || *v.Page == "":
		return "", 0, errors.New(`no "page"`)
	case v.TS == nil:
		return "", 0, errors.New(`no "ts"`)
	case *v.TS < 0:
		return "", 0, fmt.Errorf(`negative "ts" %d`, *v.TS)
	}
	return *v.Page, *v.TS, nil
}
