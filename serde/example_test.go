package serde_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/rifflestream/riffle/serde"
)

func ExampleString() {
	s := serde.String()
	b, _ := s.Serialize("greetings", "héllo")
	fmt.Printf("%x\n", b)
	v, _ := s.Deserialize("greetings", b)
	fmt.Println(v)
	// Output:
	// 68c3a96c6c6f
	// héllo
}

func ExampleInt64() {
	s := serde.Int64()
	b, _ := s.Serialize("counts", -2)
	fmt.Printf("%x\n", b) // what Kafka's LongSerializer writes
	v, _ := s.Deserialize("counts", b)
	fmt.Println(v)

	_, err := s.Deserialize("counts", []byte{0, 1, 2})
	var se *serde.Error
	fmt.Println(errors.As(err, &se), err)
	// Output:
	// fffffffffffffffe
	// -2
	// true serde: int64: cannot deserialize: want 8 bytes, got 3
}

func ExampleJSON() {
	type Order struct {
		ID    string  `json:"id"`
		Total float64 `json:"total"`
	}
	s := serde.JSON[Order]()
	b, _ := s.Serialize("orders", Order{ID: "o-1", Total: 9.5})
	fmt.Println(string(b))
	o, _ := s.Deserialize("orders", []byte(`{"id":"o-2","total":12}`))
	fmt.Printf("%+v\n", o)

	_, err := s.Deserialize("orders", []byte(`{"id":`))
	fmt.Println(err)
	// Output:
	// {"id":"o-1","total":9.5}
	// {ID:o-2 Total:12}
	// serde: json[serde_test.Order]: cannot deserialize: invalid JSON: unexpected end of JSON input
}

func ExampleNullable() {
	s := serde.Nullable(serde.String())

	b, _ := s.Serialize("users", nil)
	fmt.Println(b == nil) // Kafka null: a tombstone
	empty := ""
	b, _ = s.Serialize("users", &empty)
	fmt.Println(b == nil, len(b)) // an empty value, not null

	v, _ := s.Deserialize("users", nil)
	fmt.Println(v == nil)
	v, _ = s.Deserialize("users", []byte("ada"))
	fmt.Println(*v)
	// Output:
	// true
	// false 0
	// true
	// ada
}

func ExampleNew() {
	// Event times as Unix milliseconds in 8 bytes, so a Java consumer reads them with LongSerde.
	millis := serde.Int64()
	times := serde.New(
		func(topic string, t time.Time) ([]byte, error) { return millis.Serialize(topic, t.UnixMilli()) },
		func(topic string, data []byte) (time.Time, error) {
			ms, err := millis.Deserialize(topic, data)
			return time.UnixMilli(ms).UTC(), err
		},
	)
	b, _ := times.Serialize("clicks", time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC))
	fmt.Printf("%x\n", b)
	t, _ := times.Deserialize("clicks", b)
	fmt.Println(t)
	// Output:
	// 0000018f34221540
	// 2024-05-01 12:30:00 +0000 UTC
}

func ExampleUUID() {
	type ID [16]byte // or github.com/google/uuid.UUID
	s := serde.UUID[ID]()
	id, _ := s.Deserialize("sessions", []byte("F47AC10B-58CC-4372-A567-0E02B2C3D479"))
	fmt.Printf("%x\n", id)
	b, _ := s.Serialize("sessions", id)
	fmt.Println(string(b))
	// Output:
	// f47ac10b58cc4372a5670e02b2c3d479
	// f47ac10b-58cc-4372-a567-0e02b2c3d479
}

func ExampleList() {
	s := serde.List(serde.Nullable(serde.Int32()))
	one := int32(1)
	b, _ := s.Serialize("scores", []*int32{&one, nil})
	fmt.Printf("%x\n", b) // Kafka's ListSerde of IntegerSerde: constant-size, null index 1
	l, _ := s.Deserialize("scores", b)
	fmt.Println(len(l), *l[0], l[1] == nil)
	// Output:
	// 0000000001000000010000000200000001
	// 2 1 true
}

// A serde for a fixed binary layout, written as an append-style encoder: Riffle's sinks then
// encode each record into a buffer their task owns instead of allocating one slice per record.
func ExampleNewAppending() {
	type point struct{ X, Y int16 }
	s := serde.NewAppending(
		func(dst []byte, _ string, p point) ([]byte, error) {
			return append(dst, byte(p.X>>8), byte(p.X), byte(p.Y>>8), byte(p.Y)), nil
		},
		func(_ string, data []byte) (point, error) {
			if len(data) != 4 {
				return point{}, &serde.Error{Serde: "point", Op: "deserialize", Reason: fmt.Sprintf("want 4 bytes, got %d", len(data))}
			}
			return point{int16(data[0])<<8 | int16(data[1]), int16(data[2])<<8 | int16(data[3])}, nil
		}, 4)
	b, _ := s.Serialize("points", point{1, -2})
	fmt.Printf("%x\n", b)
	buf, _ := s.(serde.Appender[point]).AppendSerialize(b, "points", point{3, 4})
	fmt.Printf("%x\n", buf)
	p, _ := s.Deserialize("points", buf[4:])
	fmt.Println(p.X, p.Y)
	// Output:
	// 0001fffe
	// 0001fffe00030004
	// 3 4
}
