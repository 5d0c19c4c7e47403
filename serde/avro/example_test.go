package avro_test

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/rifflestream/riffle/serde/avro"
)

const pageViewSchema = `{"type":"record","name":"PageView","namespace":"web","fields":[
	{"name":"user","type":"string"},
	{"name":"page","type":"string"},
	{"name":"ms","type":"long"}]}`

// Plain Avro binary, no registry: the record bytes are the Avro encoding alone.
func ExampleGeneric() {
	views, err := avro.Generic(pageViewSchema)
	if err != nil {
		panic(err)
	}
	b, err := views.Serialize("page-views", map[string]any{"user": "ada", "page": "/", "ms": int64(120)})
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)
	v, err := views.Deserialize("page-views", b)
	if err != nil {
		panic(err)
	}
	fmt.Println(v["user"], v["page"], v["ms"])
	// Output:
	// 06 61 64 61 02 2f f0 01
	// ada / 120
}

type PageView struct {
	User string `avro:"user"`
	Page string `avro:"page"`
	Ms   int64  `avro:"ms"`
}

// A struct serde with a schema registry: the first Serialize registers the schema under the
// subject "page-views-value", and every record starts with the magic byte and the schema id.
func ExampleStruct() {
	reg := srfake.New() // a real registry in production: sr.NewClient(sr.URLs("http://registry:8081"))
	defer reg.Close()
	rc, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}

	views, err := avro.Struct[PageView](pageViewSchema, avro.SchemaRegistry(rc))
	if err != nil {
		panic(err)
	}
	b, err := views.Serialize("page-views", PageView{User: "ada", Page: "/", Ms: 120})
	if err != nil {
		panic(err)
	}
	fmt.Printf("magic %x, schema id % x, payload % x\n", b[0], b[1:5], b[5:])
	v, err := views.Deserialize("page-views", b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", v)
	// Output:
	// magic 0, schema id 00 00 00 01, payload 06 61 64 61 02 2f f0 01
	// {User:ada Page:/ Ms:120}
}

// Data written with an older schema reads with a newer one: the record's schema id names the
// writer's schema, and the serde resolves each value to its own schema.
func Example_schemaEvolution() {
	reg := srfake.New()
	defer reg.Close()
	rc, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}
	v1, err := avro.Generic(pageViewSchema, avro.SchemaRegistry(rc))
	if err != nil {
		panic(err)
	}
	old, err := v1.Serialize("page-views", map[string]any{"user": "ada", "page": "/", "ms": int64(120)})
	if err != nil {
		panic(err)
	}

	// Version 2 drops page and adds referrer, with a default.
	type PageViewV2 struct {
		User     string `avro:"user"`
		Ms       int64  `avro:"ms"`
		Referrer string `avro:"referrer"`
	}
	v2, err := avro.Struct[PageViewV2](`{"type":"record","name":"PageView","namespace":"web","fields":[
		{"name":"user","type":"string"},
		{"name":"ms","type":"long"},
		{"name":"referrer","type":"string","default":"direct"}]}`, avro.SchemaRegistry(rc))
	if err != nil {
		panic(err)
	}
	v, err := v2.Deserialize("page-views", old)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", v)

	// Bytes that are not in the wire format give a classified error, never a panic.
	_, err = v2.Deserialize("page-views", []byte("not avro"))
	fmt.Println(errors.Is(err, avro.ErrBadMagicByte), err)
	// Output:
	// {User:ada Ms:120 Referrer:direct}
	// true avro: cannot deserialize (topic "page-views"): wrong magic byte: got 0x6e, want 0x00 (was this written with the Confluent wire format?)
}

// Mapped keeps the Go type free of tags and reflection: two functions convert it.
func ExampleMapped() {
	type Celsius float64
	type Reading struct {
		Sensor string
		Temp   Celsius
	}
	readings, err := avro.Mapped(`{"type":"record","name":"Reading","fields":[
		{"name":"sensor","type":"string"},{"name":"temp","type":"double"}]}`,
		func(r Reading) (map[string]any, error) {
			return map[string]any{"sensor": r.Sensor, "temp": float64(r.Temp)}, nil
		},
		func(m map[string]any) (Reading, error) {
			return Reading{Sensor: m["sensor"].(string), Temp: Celsius(m["temp"].(float64))}, nil
		},
		avro.ForKeys(), // deterministic bytes: fine as a grouping key
	)
	if err != nil {
		panic(err)
	}
	b, err := readings.Serialize("readings", Reading{Sensor: "s1", Temp: 21.5})
	if err != nil {
		panic(err)
	}
	r, err := readings.Deserialize("readings", b)
	fmt.Printf("%d bytes, %+v, %v\n", len(b), r, err)
	// Output:
	// 11 bytes, {Sensor:s1 Temp:21.5}, <nil>
}
