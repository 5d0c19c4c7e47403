package serde

import (
	"encoding/json"
	"errors"
	"reflect"
)

// JSON returns a Serde that encodes T as JSON text in UTF-8 with encoding/json (json.Marshal and
// json.Unmarshal, so struct tags, MarshalJSON and UnmarshalJSON apply). Kafka's Java clients have no
// JSON serde: Java applications write JSON with a library such as Jackson, and any JSON text reads
// both ways.
//
// Deserialize follows json.Unmarshal: unknown object fields are ignored, and bytes that are not
// one JSON value, or do not fit T, are an *Error naming T, e.g.
// "serde: json[main.Event]: cannot deserialize: invalid JSON: ...". Serialize fails for values
// json.Marshal cannot encode (channels, functions, NaN, cycles).
func JSON[T any]() Serde[T] {
	return jsonSerde[T]{name: "json[" + typeName[T]() + "]"}
}

type jsonSerde[T any] struct {
	name string
}

func (s jsonSerde[T]) Serialize(_ string, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &Error{Serde: s.name, Op: "serialize", Reason: "json.Marshal failed", Err: err}
	}
	return b, nil
}

func (s jsonSerde[T]) Deserialize(_ string, data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		reason := "JSON does not fit the type"
		if _, ok := errors.AsType[*json.SyntaxError](err); ok {
			reason = "invalid JSON"
		}
		return zero, &Error{Serde: s.name, Op: "deserialize", Reason: reason, Err: err}
	}
	return v, nil
}

// typeName names T as Go prints it, e.g. "main.Event", "[]string", "*int32".
func typeName[T any]() string {
	return reflect.TypeFor[T]().String()
}
