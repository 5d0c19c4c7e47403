package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// List returns the Serde of Kafka's ListSerde (Serdes.ListSerde(ArrayList.class, inner)): a list
// of values each encoded by inner. All integers below are big-endian int32:
//
//	strategy  1 byte: 0x00 constant-size, 0x01 variable-size
//	0x00      null count, the index of each null element, element count, then the bytes of each
//	          non-null element, all of the same size
//	0x01      element count, then for each element its length (-1 for null) and its bytes
//
// Serialize uses the constant-size strategy exactly where Java's ListSerializer does: for Int16,
// Int32, Int64, Float32, Float64 and UUID, and for Nullable of one of them. Every other element
// serde gets the variable-size strategy (Java does the same for BooleanSerde and for every serde it
// does not know). A nil slice is written as an empty list; to write Kafka null, use
// Nullable(List(...)).
//
// A null element (an inner Serialize that returns nil, or a null entry in the data) needs an
// inner serde that handles null: use List(Nullable(Int64())) to read Java lists that may hold
// nulls; with List(Int64()), a null entry is an *Error.
//
// Deserialize accepts what Java's ListDeserializer accepts, including both strategies for
// fixed-size elements; like Java, it ignores null indexes outside the list and bytes after the last
// element.
func List[T any](inner Serde[T]) Serde[[]T] {
	return listSerde[T]{
		inner: inner,
		name:  "list[" + typeName[T]() + "]",
		size:  fixedSizeOf(inner),
		nulls: handlesNull(inner),
	}
}

type listSerde[T any] struct {
	inner Serde[T]
	name  string
	size  int  // the encoded size of every element if fixed (constant-size strategy), else 0
	nulls bool // inner handles null
}

// The strategy bytes, Kafka's Serdes.ListSerde.SerializationStrategy ordinals.
const (
	listConstantSize = 0
	listVariableSize = 1
)

func (l listSerde[T]) Serialize(topic string, v []T) ([]byte, error) {
	if len(v) > math.MaxInt32 {
		return nil, &Error{Serde: l.name, Op: "serialize", Reason: fmt.Sprintf("%d elements, more than an int32 counts", len(v))}
	}
	elems := make([][]byte, len(v))
	nulls, total := 0, 0
	for i, e := range v {
		b, err := l.inner.Serialize(topic, e)
		switch {
		case err != nil:
			return nil, &Error{Serde: l.name, Op: "serialize", Reason: fmt.Sprintf("element %d", i), Err: err}
		case b == nil:
			nulls++
		case l.size > 0 && len(b) != l.size:
			return nil, &Error{Serde: l.name, Op: "serialize", Reason: fmt.Sprintf("element %d: want %d bytes, got %d", i, l.size, len(b))}
		case len(b) > math.MaxInt32:
			return nil, &Error{Serde: l.name, Op: "serialize", Reason: fmt.Sprintf("element %d: %d bytes, more than an int32 counts", i, len(b))}
		}
		elems[i] = b
		total += len(b)
	}

	if l.size > 0 {
		out := make([]byte, 0, 1+4+4*nulls+4+total)
		out = append(out, listConstantSize)
		out = binary.BigEndian.AppendUint32(out, uint32(nulls))
		for i, b := range elems {
			if b == nil {
				out = binary.BigEndian.AppendUint32(out, uint32(i))
			}
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(elems)))
		for _, b := range elems {
			out = append(out, b...)
		}
		return out, nil
	}

	out := make([]byte, 0, 1+4+4*len(elems)+total)
	out = append(out, listVariableSize)
	out = binary.BigEndian.AppendUint32(out, uint32(len(elems)))
	for _, b := range elems {
		if b == nil {
			out = binary.BigEndian.AppendUint32(out, math.MaxUint32) // -1
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func (l listSerde[T]) Deserialize(topic string, data []byte) ([]T, error) {
	r := listReader{data: data}
	strategy, ok := r.byte()
	if !ok {
		return nil, l.corrupt("no strategy byte")
	}
	var nullIndexes []int32
	switch strategy {
	case listVariableSize:
	case listConstantSize:
		if l.size == 0 {
			return nil, l.corrupt("constant-size elements, but " + typeName[T]() + " values vary in size")
		}
		n, ok := r.int32()
		switch {
		case !ok:
			return nil, l.corrupt("data ends in the null count")
		case n < 0:
			return nil, l.corrupt(fmt.Sprintf("negative null count %d", n))
		case int(n) > len(data)/4:
			return nil, l.corrupt(fmt.Sprintf("null count %d, more than %d bytes hold", n, len(data)))
		}
		nullIndexes = make([]int32, n)
		for i := range nullIndexes {
			if nullIndexes[i], ok = r.int32(); !ok {
				return nil, l.corrupt("data ends in the null indexes")
			}
		}
	default:
		return nil, l.corrupt(fmt.Sprintf("unknown strategy byte 0x%02x", strategy))
	}

	n, ok := r.int32()
	switch {
	case !ok:
		return nil, l.corrupt("data ends in the element count")
	case n < 0:
		return nil, l.corrupt(fmt.Sprintf("negative element count %d", n))
	case int(n) > len(data):
		return nil, l.corrupt(fmt.Sprintf("element count %d, more than %d bytes hold", n, len(data)))
	}
	var isNull []bool
	if len(nullIndexes) > 0 {
		isNull = make([]bool, n)
		for _, i := range nullIndexes {
			if 0 <= i && i < n {
				isNull[i] = true
			}
		}
	}

	// Allocate no more than the data can hold, whatever the count says.
	most := r.remaining() / 4
	if strategy == listConstantSize {
		most = r.remaining()/l.size + len(nullIndexes)
	}
	out := make([]T, 0, min(int(n), most))
	for i := range int(n) {
		var elem []byte // nil: null
		if strategy == listConstantSize {
			if isNull == nil || !isNull[i] {
				if elem, ok = r.bytes(l.size); !ok {
					return nil, l.corrupt(fmt.Sprintf("data ends in element %d", i))
				}
			}
		} else {
			size, ok := r.int32()
			switch {
			case !ok:
				return nil, l.corrupt(fmt.Sprintf("data ends in the length of element %d", i))
			case size < -1:
				return nil, l.corrupt(fmt.Sprintf("element %d has negative length %d", i, size))
			case int(size) > len(data):
				return nil, l.corrupt(fmt.Sprintf("element %d has length %d, more than %d bytes hold", i, size, len(data)))
			case size >= 0:
				if elem, ok = r.bytes(int(size)); !ok {
					return nil, l.corrupt(fmt.Sprintf("data ends in element %d", i))
				}
			}
		}
		if elem == nil && !l.nulls {
			return nil, l.corrupt(fmt.Sprintf("element %d is null; read nulls with List(Nullable(...))", i))
		}
		v, err := l.inner.Deserialize(topic, elem)
		if err != nil {
			return nil, &Error{Serde: l.name, Op: "deserialize", Reason: fmt.Sprintf("element %d", i), Err: err}
		}
		out = append(out, v)
	}
	return out, nil
}

func (l listSerde[T]) corrupt(reason string) *Error {
	return &Error{Serde: l.name, Op: "deserialize", Reason: reason}
}

// listReader reads a list's bytes front to back.
type listReader struct {
	data []byte
	off  int
}

func (r *listReader) remaining() int { return len(r.data) - r.off }

func (r *listReader) byte() (byte, bool) {
	if r.remaining() < 1 {
		return 0, false
	}
	r.off++
	return r.data[r.off-1], true
}

func (r *listReader) int32() (int32, bool) {
	if r.remaining() < 4 {
		return 0, false
	}
	r.off += 4
	return int32(binary.BigEndian.Uint32(r.data[r.off-4:])), true
}

// bytes returns the next n bytes, capped so that appending to them cannot overwrite what follows.
// With n == 0 it returns an empty, non-nil slice: an empty element, not null.
func (r *listReader) bytes(n int) ([]byte, bool) {
	if r.remaining() < n {
		return nil, false
	}
	r.off += n
	return r.data[r.off-n : r.off : r.off], true
}
