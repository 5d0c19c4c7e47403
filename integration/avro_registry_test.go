package integration

// The Avro serdes against a real schema registry: Apicurio Registry through its
// Confluent-compatible API (/apis/ccompat/v7), started from Maven Central jars by
// tools/registry/registry.sh, or the registry at SCHEMA_REGISTRY_URL when set. These check what
// franz-go's srfake cannot: real compatibility rules, real ids, a real registry's error codes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde/avro"
)

// schemaRegistry returns the base URL of a Confluent-compatible registry for this test, started
// with tools/registry/registry.sh and stopped when the test ends. It skips when there is no such
// script (or under -short); a script that exists but fails fails the test under CI=true and
// skips it otherwise.
func schemaRegistry(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a schema registry; skipped under -short")
	}
	if url := strings.TrimSpace(os.Getenv("SCHEMA_REGISTRY_URL")); url != "" {
		return url
	}
	script, ok := findUp(filepath.Join("tools", "registry", "registry.sh"))
	if !ok {
		t.Skip("no schema registry: no tools/registry/registry.sh and no SCHEMA_REGISTRY_URL")
	}
	run := filepath.Join(os.TempDir(), "riffle-registry", fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	env := append(os.Environ(), "RIFFLE_REGISTRY_RUN="+run, "RIFFLE_REGISTRY_OWNER_PID="+strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute) // a first fetch included
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Cleanup(func() {
		stop := exec.Command("bash", script, "stop")
		stop.Env = env
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("registry.sh stop: %v\n%s", err, out)
		}
	})
	if err != nil {
		msg := fmt.Sprintf("registry.sh start: %v\n%s", err, strings.TrimSpace(stderr.String()))
		if kafkatest.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

func findUp(rel string) (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// orderSchema is version v of an Order record in namespace ns: version 2 widens amount to long,
// adds an enum symbol (with an enum default) and a nullable note with a default, all backward
// compatible; version 3 adds a field without a default, which is not.
func orderSchema(ns string, v int) string {
	fields := []string{`{"name":"id","type":"string"}`}
	switch v {
	case 1:
		fields = append(fields, `{"name":"amount","type":"int"}`,
			`{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}}`)
	default:
		fields = append(fields, `{"name":"amount","type":"long"}`,
			`{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"],"default":"NEW"}}`,
			`{"name":"note","type":["null","string"],"default":null}`)
		if v == 3 {
			fields = append(fields, `{"name":"region","type":"string"}`)
		}
	}
	return fmt.Sprintf(`{"type":"record","name":"Order","namespace":%q,"fields":[%s]}`, ns, strings.Join(fields, ","))
}

type orderV2 struct {
	ID     string  `avro:"id"`
	Amount int64   `avro:"amount"`
	Status string  `avro:"status"`
	Note   *string `avro:"note"`
}

func TestAvroRegistry(t *testing.T) {
	url := schemaRegistry(t)
	rc, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Names unique to the run, so the suite also runs against a shared registry.
	unique := func(prefix string) string { return kafkatest.Name(t, prefix) }
	namespace := func() string { return "riffle.it" + strings.ReplaceAll(unique("n")[len("n-"):], "-", "_") }
	header := func(id int) []byte { return binary.BigEndian.AppendUint32([]byte{0}, uint32(id)) }
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("wire format", func(t *testing.T) {
		topic, ns := unique("orders"), namespace()
		s, err := avro.Generic(orderSchema(ns, 1), avro.SchemaRegistry(rc))
		must(t, err)
		plain, err := avro.Generic(orderSchema(ns, 1))
		must(t, err)
		v := map[string]any{"id": "o-1", "amount": int32(995), "status": "PAID"}
		b, err := s.Serialize(topic, v)
		must(t, err)
		latest, err := rc.SchemaByVersion(ctx, topic+"-value", -1)
		must(t, err)
		payload, err := plain.Serialize(topic, v)
		must(t, err)
		if want := append(header(latest.ID), payload...); !bytes.Equal(b, want) {
			t.Fatalf("got %x, want %x (registry id %d)", b, want, latest.ID)
		}
		back, err := s.Deserialize(topic, b)
		must(t, err)
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("got %v, want %v", back, v)
		}
		// A second serde with the same schema gets the same id from the registry.
		again, err := avro.Generic(orderSchema(ns, 1), avro.SchemaRegistry(rc))
		must(t, err)
		b2, err := again.Serialize(topic, v)
		must(t, err)
		if !bytes.Equal(b2, b) {
			t.Fatalf("a second registration gave %x, want %x", b2[:5], b[:5])
		}
	})

	t.Run("evolution under BACKWARD", func(t *testing.T) {
		topic, ns := unique("orders"), namespace()
		subject := topic + "-value"
		v1, err := avro.Generic(orderSchema(ns, 1), avro.SchemaRegistry(rc))
		must(t, err)
		old, err := v1.Serialize(topic, map[string]any{"id": "o-1", "amount": int32(5), "status": "PAID"})
		must(t, err)
		for _, r := range rc.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject) {
			must(t, r.Err)
		}

		v2, err := avro.Struct[orderV2](orderSchema(ns, 2), avro.SchemaRegistry(rc))
		must(t, err)
		note := "fragile"
		newer, err := v2.Serialize(topic, orderV2{ID: "o-2", Amount: 1 << 40, Status: "SHIPPED", Note: &note})
		must(t, err)
		if bytes.Equal(old[:5], newer[:5]) {
			t.Fatalf("versions 1 and 2 share schema id %x", old[1:5])
		}
		versions, err := rc.SubjectVersions(ctx, subject)
		must(t, err)
		if len(versions) != 2 {
			t.Fatalf("subject %s has versions %v, want 2", subject, versions)
		}

		got, err := v2.Deserialize(topic, old)
		must(t, err)
		if want := (orderV2{ID: "o-1", Amount: 5, Status: "PAID"}); !reflect.DeepEqual(got, want) {
			t.Fatalf("version 1 data read as version 2: got %+v, want %+v", got, want)
		}
		got, err = v2.Deserialize(topic, newer)
		must(t, err)
		if got.Note == nil || *got.Note != note || got.Amount != 1<<40 {
			t.Fatalf("got %+v", got)
		}
		// The old reader cannot read the new writer: amount does not narrow back to int.
		if _, err := v1.Deserialize(topic, newer); !errors.Is(err, avro.ErrIncompatibleSchema) {
			t.Fatalf("got %v, want ErrIncompatibleSchema", err)
		}

		// Version 3 adds a field without a default: the registry refuses it.
		v3, err := avro.Generic(orderSchema(ns, 3), avro.SchemaRegistry(rc))
		must(t, err)
		_, err = v3.Serialize(topic, map[string]any{"id": "o-3", "amount": int64(1), "status": "NEW", "note": nil, "region": "eu"})
		var ae *avro.Error
		if !errors.Is(err, avro.ErrIncompatibleSchema) || !errors.As(err, &ae) || ae.Subject != subject {
			t.Fatalf("got %v, want ErrIncompatibleSchema for subject %s", err, subject)
		}
		t.Logf("registry refusal: %v", err)
	})

	t.Run("errors", func(t *testing.T) {
		topic, ns := unique("orders"), namespace()
		s, err := avro.Generic(orderSchema(ns, 1), avro.SchemaRegistry(rc))
		must(t, err)
		b, err := s.Serialize(topic, map[string]any{"id": "o-1", "amount": int32(1), "status": "NEW"})
		must(t, err)
		_, err = s.Deserialize(topic, append(header(1<<30), b[5:]...))
		if !errors.Is(err, avro.ErrUnknownSchemaID) || !strings.Contains(err.Error(), "schema id 1073741824") {
			t.Fatalf("got %v, want ErrUnknownSchemaID", err)
		}
		if _, err := s.Deserialize(topic, append([]byte{1}, b[1:]...)); !errors.Is(err, avro.ErrBadMagicByte) {
			t.Fatalf("got %v, want ErrBadMagicByte", err)
		}
		if _, err := s.Deserialize(topic, b[:len(b)-1]); !errors.Is(err, avro.ErrTruncated) {
			t.Fatalf("got %v, want ErrTruncated", err)
		}
		off, err := avro.Generic(orderSchema(namespace(), 1), avro.SchemaRegistry(rc), avro.AutoRegisterSchemas(false))
		must(t, err)
		if _, err := off.Serialize(topic, map[string]any{"id": "x", "amount": int32(1), "status": "NEW"}); !errors.Is(err, avro.ErrSchemaNotRegistered) {
			t.Fatalf("got %v, want ErrSchemaNotRegistered", err)
		}
	})

	t.Run("subjects", func(t *testing.T) {
		topic, ns := unique("orders"), namespace()
		v := map[string]any{"id": "k", "amount": int32(1), "status": "NEW"}
		for _, tc := range []struct {
			opts    []avro.Opt
			subject string
		}{
			{[]avro.Opt{avro.ForKeys()}, topic + "-key"},
			{[]avro.Opt{avro.SubjectName(avro.RecordNameStrategy)}, ns + ".Order"},
			{[]avro.Opt{avro.SubjectName(avro.TopicRecordNameStrategy)}, topic + "-" + ns + ".Order"},
		} {
			s, err := avro.Generic(orderSchema(ns, 1), append(tc.opts, avro.SchemaRegistry(rc))...)
			must(t, err)
			_, err = s.Serialize(topic, v)
			must(t, err)
			if _, err := rc.SchemaByVersion(ctx, tc.subject, -1); err != nil {
				t.Fatalf("subject %s: %v", tc.subject, err)
			}
		}
	})

	t.Run("use latest version", func(t *testing.T) {
		topic, ns := unique("orders"), namespace()
		subject := topic + "-value"
		_, err := rc.RegisterSchema(ctx, subject, sr.Schema{Schema: orderSchema(ns, 1)}, -1, -1)
		must(t, err)
		id2, err := rc.RegisterSchema(ctx, subject, sr.Schema{Schema: orderSchema(ns, 2)}, -1, -1)
		must(t, err)
		v1, err := avro.Generic(orderSchema(ns, 1), avro.SchemaRegistry(rc), avro.UseLatestVersion())
		must(t, err)
		b, err := v1.Serialize(topic, map[string]any{"id": "o", "amount": int32(3), "status": "PAID"})
		must(t, err)
		if !bytes.Equal(b[:5], header(id2)) {
			t.Fatalf("header %x, want the latest id %d", b[:5], id2)
		}
		v2, err := avro.Struct[orderV2](orderSchema(ns, 2), avro.SchemaRegistry(rc))
		must(t, err)
		got, err := v2.Deserialize(topic, b)
		must(t, err)
		if want := (orderV2{ID: "o", Amount: 3, Status: "PAID"}); !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})

	t.Run("through Kafka", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		topic, ns := unique("orders"), namespace()
		kafkatest.CreateTopic(t, kafkatest.Admin(t, brokers), topic, 3, 1, nil)
		type orderKey struct {
			ID string `avro:"id"`
		}
		keys, err := avro.Struct[orderKey](fmt.Sprintf(`{"type":"record","name":"OrderKey","namespace":%q,"fields":[{"name":"id","type":"string"}]}`, ns),
			avro.SchemaRegistry(rc), avro.ForKeys())
		must(t, err)
		values, err := avro.Struct[orderV2](orderSchema(ns, 2), avro.SchemaRegistry(rc))
		must(t, err)
		cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic))
		want := map[string]orderV2{}
		for i := range 20 {
			o := orderV2{ID: fmt.Sprintf("o-%d", i%5), Amount: int64(i), Status: "NEW"}
			k, err := keys.Serialize(topic, orderKey{ID: o.ID})
			must(t, err)
			v, err := values.Serialize(topic, o)
			must(t, err)
			must(t, cl.ProduceSync(ctx, &kgo.Record{Key: k, Value: v}).FirstErr())
			want[o.ID] = o
		}
		got := map[string]orderV2{}
		for _, r := range kafkatest.ReadAll(t, brokers, topic, false) {
			k, err := keys.Deserialize(topic, r.Key)
			must(t, err)
			v, err := values.Deserialize(topic, r.Value)
			must(t, err)
			if k.ID != v.ID {
				t.Fatalf("key %q carries value for %q", k.ID, v.ID)
			}
			// Deterministic key bytes: records of one key land in one partition, in order.
			if prev, ok := got[k.ID]; ok && prev.Amount >= v.Amount {
				t.Fatalf("key %s: amount %d after %d", k.ID, v.Amount, prev.Amount)
			}
			got[k.ID] = v
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}
