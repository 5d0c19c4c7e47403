package avro_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/rifflestream/riffle/serde/avro"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"int"},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}}]}`
	// orderV2 is orderV1 evolved backward-compatibly: amount widened to long, a nullable note
	// with a default, a status symbol added with an enum default.
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"long"},
		{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"],"default":"NEW"}},
		{"name":"note","type":["null","string"],"default":null}]}`
)

// newRegistry starts franz-go's in-process fake registry and a client for it.
func newRegistry(t testing.TB) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl
}

func header(id int) []byte {
	return binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
}

func TestWireFormat(t *testing.T) {
	reg, cl := newRegistry(t)
	// Another subject first, so the order schema's id is not 1 by accident.
	if _, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatal(err)
	}
	s, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := avro.Generic(orderV1)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]any{"id": "o-1", "amount": int32(995), "status": "PAID"}
	got, err := s.Serialize("orders", v)
	if err != nil {
		t.Fatal(err)
	}
	registered, ok := reg.GetSchema("orders-value", 1)
	if !ok {
		t.Fatal("Serialize did not register the schema under orders-value")
	}
	payload, err := plain.Serialize("orders", v)
	if err != nil {
		t.Fatal(err)
	}
	// magic 0, id 2 big-endian, then exactly the plain Avro encoding.
	want := append(header(registered.ID), payload...)
	if registered.ID != 2 || !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x (id %d)", got, want, registered.ID)
	}
	if !bytes.Equal(want, append([]byte{0, 0, 0, 0, 2}, mustHex(t, "066f2d31c60f02")...)) {
		t.Fatalf("wire bytes %x", want)
	}
	back, err := s.Deserialize("orders", got)
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("got %v, %v", back, err)
	}
}

func TestSubjectNames(t *testing.T) {
	cases := []struct {
		name string
		opts []avro.Opt
		want string
	}{
		{"topic name, value", nil, "orders-value"},
		{"topic name, key", []avro.Opt{avro.ForKeys()}, "orders-key"},
		{"record name", []avro.Opt{avro.SubjectName(avro.RecordNameStrategy)}, "shop.Order"},
		{"topic record name", []avro.Opt{avro.SubjectName(avro.TopicRecordNameStrategy), avro.ForKeys()}, "orders-shop.Order"},
		{"custom", []avro.Opt{avro.SubjectName(func(topic string, key bool, record string) string {
			return fmt.Sprintf("%s/%v/%s", topic, key, record)
		})}, "orders/false/shop.Order"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, cl := newRegistry(t)
			s, err := avro.Generic(orderV1, append(tc.opts, avro.SchemaRegistry(cl))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Serialize("orders", map[string]any{"id": "a", "amount": 1, "status": "NEW"}); err != nil {
				t.Fatal(err)
			}
			if !reg.SubjectExists(tc.want) {
				t.Fatalf("no subject %q", tc.want)
			}
		})
	}
}

// TestRegistryEvolution writes with version 1 and reads with version 2 and the other way round,
// through the registry: each record names its writer's schema.
func TestRegistryEvolution(t *testing.T) {
	_, cl := newRegistry(t)
	v1, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := avro.Generic(orderV2, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	old, err := v1.Serialize("orders", map[string]any{"id": "o-1", "amount": int32(5), "status": "PAID"})
	if err != nil {
		t.Fatal(err)
	}
	newer, err := v2.Serialize("orders", map[string]any{"id": "o-2", "amount": int64(1) << 40, "status": "SHIPPED",
		"note": map[string]any{"string": "fragile"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old[:5], header(1)) || !bytes.Equal(newer[:5], header(2)) {
		t.Fatalf("headers %x, %x: want ids 1 and 2", old[:5], newer[:5])
	}

	got, err := v2.Deserialize("orders", old)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "o-1", "amount": int64(5), "status": "PAID", "note": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v1 data read as v2: got %v, want %v", got, want)
	}
	// v1 cannot read v2's data: v2 widened amount to long, which does not narrow back to int.
	_, err = v1.Deserialize("orders", newer)
	var ae *avro.Error
	if !errors.Is(err, avro.ErrIncompatibleSchema) || !errors.As(err, &ae) || ae.Field != "amount" || ae.SchemaID != 2 {
		t.Fatalf("got %v", err)
	}
}

// TestRegistryForwardEvolution: an older reader reads a newer writer's data when the change is
// forward compatible: a field added, an enum symbol added (unknown to the reader, which fails
// only for the values that carry it, as it has no enum default).
func TestRegistryForwardEvolution(t *testing.T) {
	_, cl := newRegistry(t)
	newer := strings.Replace(strings.Replace(orderV1, `"PAID"]`, `"PAID","SHIPPED"]`, 1),
		`{"name":"id","type":"string"},`, `{"name":"id","type":"string"},{"name":"tags","type":{"type":"array","items":"string"}},`, 1)
	v1, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	v3, err := avro.Generic(newer, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	paid, err := v3.Serialize("orders", map[string]any{"id": "o", "tags": []any{"x"}, "amount": int32(7), "status": "PAID"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v1.Deserialize("orders", paid)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"id": "o", "amount": int32(7), "status": "PAID"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	shipped, err := v3.Serialize("orders", map[string]any{"id": "o", "tags": []any{}, "amount": int32(7), "status": "SHIPPED"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v1.Deserialize("orders", shipped)
	var ae *avro.Error
	if !errors.Is(err, avro.ErrIncompatibleSchema) || !errors.As(err, &ae) || ae.Field != "status" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), `"SHIPPED"`) {
		t.Fatalf("error does not name the symbol: %v", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	reg, cl := newRegistry(t)
	s, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.Serialize("orders", map[string]any{"id": "o-1", "amount": 1, "status": "NEW"})
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, err, want error, id int) {
		t.Helper()
		var ae *avro.Error
		if !errors.Is(err, want) || !errors.As(err, &ae) || ae.SchemaID != id || ae.Topic != "orders" {
			t.Fatalf("got %v (%#v), want %v with schema id %d", err, ae, want, id)
		}
		if !strings.HasPrefix(err.Error(), "avro: ") {
			t.Fatalf("error %q does not start with avro:", err)
		}
	}
	t.Run("unknown schema id", func(t *testing.T) {
		_, err := s.Deserialize("orders", append(header(77), good[5:]...))
		check(t, err, avro.ErrUnknownSchemaID, 77)
		if !strings.Contains(err.Error(), "schema id 77") {
			t.Fatalf("error does not name the id: %v", err)
		}
	})
	t.Run("wrong magic byte", func(t *testing.T) {
		_, err := s.Deserialize("orders", append([]byte{1}, good[1:]...))
		check(t, err, avro.ErrBadMagicByte, -1)
	})
	t.Run("plain avro read as wire format", func(t *testing.T) {
		_, err := s.Deserialize("orders", good[5:])
		check(t, err, avro.ErrBadMagicByte, -1)
	})
	t.Run("truncated header", func(t *testing.T) {
		_, err := s.Deserialize("orders", good[:3])
		check(t, err, avro.ErrTruncated, -1)
	})
	t.Run("truncated payload", func(t *testing.T) {
		_, err := s.Deserialize("orders", good[:len(good)-1])
		check(t, err, avro.ErrTruncated, 1)
	})
	t.Run("registry refuses the schema", func(t *testing.T) {
		reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/versions") {
				return false
			}
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
			return true
		})
		defer reg.ClearInterceptors()
		v2, err := avro.Generic(orderV2, avro.SchemaRegistry(cl))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v2.Serialize("orders", map[string]any{"id": "x", "amount": int64(1), "status": "NEW"})
		check(t, err, avro.ErrIncompatibleSchema, -1)
		var ae *avro.Error
		if errors.As(err, &ae); ae.Subject != "orders-value" {
			t.Fatalf("error does not name the subject: %v", err)
		}
	})
	t.Run("writer schema cannot be resolved", func(t *testing.T) {
		// A reader whose new field has no default cannot read what v1 wrote.
		strict, err := avro.Generic(strings.Replace(orderV2, `,"default":null`, "", 1), avro.SchemaRegistry(cl))
		if err != nil {
			t.Fatal(err)
		}
		_, err = strict.Deserialize("orders", good)
		check(t, err, avro.ErrIncompatibleSchema, 1)
	})
	t.Run("not registered and auto-register off", func(t *testing.T) {
		v2, err := avro.Generic(orderV2, avro.SchemaRegistry(cl), avro.AutoRegisterSchemas(false))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v2.Serialize("orders", map[string]any{"id": "x", "amount": int64(1), "status": "NEW"})
		check(t, err, avro.ErrSchemaNotRegistered, -1)
		_, err = v2.Serialize("nothing-here", map[string]any{"id": "x", "amount": int64(1), "status": "NEW"})
		if !errors.Is(err, avro.ErrSchemaNotRegistered) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("registry down", func(t *testing.T) {
		down, err := sr.NewClient(sr.URLs("http://127.0.0.1:1"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := avro.Generic(orderV1, avro.SchemaRegistry(down))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Deserialize("orders", good); err == nil || errors.Is(err, avro.ErrUnknownSchemaID) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAutoRegisterOff(t *testing.T) {
	reg, cl := newRegistry(t)
	id, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderV1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.Generic(orderV1, avro.SchemaRegistry(cl), avro.AutoRegisterSchemas(false))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Serialize("orders", map[string]any{"id": "a", "amount": 1, "status": "NEW"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:5], header(id)) {
		t.Fatalf("header %x, want id %d", b[:5], id)
	}
	if versions, _ := cl.SubjectVersions(context.Background(), "orders-value"); len(versions) != 1 {
		t.Fatalf("versions %v: Serialize registered", versions)
	}
}

// TestUseLatestVersion: a serde on version 1 writes with version 2, the subject's latest.
func TestUseLatestVersion(t *testing.T) {
	reg, cl := newRegistry(t)
	if _, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderV1}); err != nil {
		t.Fatal(err)
	}
	id2, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderV2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.Generic(orderV1, avro.SchemaRegistry(cl), avro.UseLatestVersion())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Serialize("orders", map[string]any{"id": "a", "amount": int32(3), "status": "PAID"})
	if err != nil {
		t.Fatal(err)
	}
	plain2, err := avro.Generic(orderV2)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := plain2.Serialize("orders", map[string]any{"id": "a", "amount": int64(3), "status": "PAID", "note": nil})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(header(id2), payload...); !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	if _, err := avro.Generic(orderV1, avro.SchemaRegistry(cl), avro.UseLatestVersion(), avro.AutoRegisterSchemas(true)); err == nil {
		t.Fatal("UseLatestVersion with AutoRegisterSchemas(true) accepted")
	}
	if _, err := s.Serialize("empty", map[string]any{"id": "a", "amount": int32(3), "status": "PAID"}); !errors.Is(err, avro.ErrSchemaNotRegistered) {
		t.Fatalf("got %v", err)
	}
}

// TestRegistryCache: many goroutines, one registry call per schema id and per subject.
func TestRegistryCache(t *testing.T) {
	reg, cl := newRegistry(t)
	var byID, registers atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasPrefix(r.URL.Path, "/schemas/ids/"):
			byID.Add(1)
		case r.Method == http.MethodPost:
			registers.Add(1)
		}
		return false
	})
	v1, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := avro.Generic(orderV2, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	old, err := v1.Serialize("orders", map[string]any{"id": "a", "amount": 1, "status": "NEW"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				b, err := v2.Serialize("orders", map[string]any{"id": fmt.Sprint(g, i), "amount": int64(i), "status": "PAID"})
				if err == nil {
					_, err = v2.Deserialize("orders", b)
				}
				if err == nil {
					_, err = v2.Deserialize("orders", old)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// v1 registered once; v2 registered once and read two ids once each.
	if byID.Load() != 2 || registers.Load() != 2 {
		t.Fatalf("%d lookups by id and %d registrations, want 2 and 2", byID.Load(), registers.Load())
	}
}
