package avro

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
)

// transcode.go: runs a plan over bytes. Every byte of untrusted input passes through here before
// goavro decodes it: goavro sizes its slices and maps from the block counts it reads and recurses
// once per level of nesting, so a few forged bytes could make it allocate gigabytes or overflow
// the stack. The machine checks each count against the bytes left and bounds the nesting.

const (
	// maxDepth bounds how deeply records, arrays, maps and unions may nest in one value.
	maxDepth = 10000
	// maxZeroSizeItems bounds the items of types that encode to no bytes at all (null, an empty
	// record), which no byte count can bound, in one value.
	maxZeroSizeItems = 1 << 16
)

type machine struct {
	in  []byte
	pos int
	out []byte

	discard   int  // > 0: reading only, nothing is written
	sortMaps  bool // write each map's entries sorted by key, as one block
	depth     int
	zeroItems int
}

// transcode runs p over all of in, appending the reader's bytes to out.
func transcode(p *plan, in, out []byte, sortMaps bool) ([]byte, error) {
	m := &machine{in: in, out: out, sortMaps: sortMaps}
	if err := m.all(p); err != nil {
		return nil, err
	}
	return m.out, nil
}

// check runs p over all of in without writing anything: it proves that in is one well-formed
// value within the decoder's limits.
func check(p *plan, in []byte) error {
	m := &machine{in: in, discard: 1}
	return m.all(p)
}

func (m *machine) all(p *plan) error {
	if err := m.run(p); err != nil {
		return err
	}
	if left := len(m.in) - m.pos; left > 0 {
		return malformed("%d bytes left over after the value", left)
	}
	return nil
}

func (m *machine) left() int { return len(m.in) - m.pos }

func (m *machine) put(b ...byte) {
	if m.discard == 0 {
		m.out = append(m.out, b...)
	}
}

func (m *machine) putLong(v int64) {
	if m.discard == 0 {
		m.out = appendLong(m.out, v)
	}
}

func (m *machine) take(n int) ([]byte, error) {
	if n > m.left() {
		return nil, truncated("need %d bytes at offset %d, have %d", n, m.pos, m.left())
	}
	b := m.in[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *machine) readLong() (int64, error) {
	u, n := binary.Uvarint(m.in[m.pos:])
	switch {
	case n > 0:
		m.pos += n
		return int64(u>>1) ^ -int64(u&1), nil
	case n == 0:
		return 0, truncated("varint cut short at offset %d", m.pos)
	default:
		return 0, malformed("varint at offset %d overflows a long", m.pos)
	}
}

func (m *machine) readInt() (int64, error) {
	at := m.pos
	v, err := m.readLong()
	if err == nil && v != int64(int32(v)) {
		return 0, malformed("int at offset %d out of range: %d", at, v)
	}
	return v, err
}

func (m *machine) readLength() (int, error) {
	at := m.pos
	n, err := m.readLong()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, malformed("negative length %d at offset %d", n, at)
	}
	if n > int64(m.left()) {
		return 0, truncated("length %d at offset %d, but %d bytes left", n, at, m.left())
	}
	return int(n), nil
}

func (m *machine) enter() error {
	m.depth++
	if m.depth > maxDepth {
		return malformed("value nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (m *machine) run(p *plan) error {
	switch p.op {
	case opNull:
		return nil
	case opBoolean:
		b, err := m.take(1)
		if err != nil {
			return err
		}
		if b[0] > 1 {
			return malformed("boolean byte %d at offset %d", b[0], m.pos-1)
		}
		m.put(b[0])
	case opInt, opIntToLong:
		v, err := m.readInt()
		if err != nil {
			return err
		}
		m.putLong(v)
	case opLong:
		v, err := m.readLong()
		if err != nil {
			return err
		}
		m.putLong(v)
	case opIntToFloat, opLongToFloat, opIntToDouble, opLongToDouble:
		var v int64
		var err error
		if p.op == opIntToFloat || p.op == opIntToDouble {
			v, err = m.readInt()
		} else {
			v, err = m.readLong()
		}
		if err != nil {
			return err
		}
		if m.discard == 0 {
			if p.op == opIntToFloat || p.op == opLongToFloat {
				m.out = appendFloat(m.out, float32(v))
			} else {
				m.out = appendDouble(m.out, float64(v))
			}
		}
	case opFloat, opDouble:
		n := 4
		if p.op == opDouble {
			n = 8
		}
		b, err := m.take(n)
		if err != nil {
			return err
		}
		m.put(b...)
	case opFloatToDouble:
		b, err := m.take(4)
		if err != nil {
			return err
		}
		if m.discard == 0 {
			m.out = appendDouble(m.out, float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
		}
	case opBytes:
		n, err := m.readLength()
		if err != nil {
			return err
		}
		b, _ := m.take(n)
		m.putLong(int64(n))
		m.put(b...)
	case opFixed:
		b, err := m.take(p.size)
		if err != nil {
			return err
		}
		m.put(b...)
	case opEnum:
		at := m.pos
		i, err := m.readInt()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(p.enum)) {
			return malformed("enum index %d at offset %d, want 0 to %d", i, at, len(p.enum)-1)
		}
		if p.enum[i] < 0 {
			return incompatible("writer's enum symbol %q is not a reader's symbol, and the reader's enum has no default", p.wsyms[i])
		}
		m.putLong(p.enum[i])
	case opUnion:
		at := m.pos
		i, err := m.readLong()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(p.branches)) {
			return malformed("union index %d at offset %d, want 0 to %d", i, at, len(p.branches)-1)
		}
		if err := m.enter(); err != nil {
			return err
		}
		if p.toIndex[i] >= 0 {
			m.putLong(p.toIndex[i])
		}
		if err := m.run(p.branches[i]); err != nil {
			return err
		}
		m.depth--
	case opToUnion:
		m.putLong(p.index)
		return m.run(p.elem)
	case opArray, opMap:
		if err := m.enter(); err != nil {
			return err
		}
		if err := m.collection(p); err != nil {
			return err
		}
		m.depth--
	case opRecord:
		if err := m.enter(); err != nil {
			return err
		}
		if err := m.record(p); err != nil {
			return err
		}
		m.depth--
	case opFail:
		return p.err
	default:
		return malformed("internal: unknown plan step %d", p.op)
	}
	return nil
}

// entry is one map entry in the output: its key's bytes and the whole entry's span.
type entry struct {
	key        []byte
	start, end int
}

func (m *machine) collection(p *plan) error {
	isMap := p.op == opMap
	sorting := isMap && m.sortMaps && m.discard == 0
	var entries []entry
	base := len(m.out)
	per := p.elem.min
	if isMap {
		per++ // the key takes at least its length byte
	}
	for {
		at := m.pos
		n, err := m.readLong()
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		end := -1
		if n < 0 {
			if n == math.MinInt64 {
				return malformed("block count %d at offset %d", n, at)
			}
			n = -n
			size, err := m.readLength()
			if err != nil {
				return err
			}
			end = m.pos + size
		}
		if per > 0 {
			if n > int64(m.left()/per) {
				return truncated("block of %d items at offset %d, but %d bytes left", n, at, m.left())
			}
		} else {
			if n > int64(maxZeroSizeItems-m.zeroItems) {
				return malformed("more than %d items that encode to no bytes", maxZeroSizeItems)
			}
			m.zeroItems += int(n)
		}
		if !sorting {
			m.putLong(n)
		}
		for range n {
			start := len(m.out)
			var key []byte
			if isMap {
				kn, err := m.readLength()
				if err != nil {
					return err
				}
				key, _ = m.take(kn)
				m.putLong(int64(kn))
				m.put(key...)
			}
			if err := m.run(p.elem); err != nil {
				return err
			}
			if sorting {
				entries = append(entries, entry{key: key, start: start, end: len(m.out)})
			}
		}
		if end >= 0 && m.pos != end {
			return malformed("block at offset %d declares %d bytes but its items take %d", at, end-at, m.pos-at)
		}
	}
	if !sorting {
		m.putLong(0)
		return nil
	}
	if len(entries) > 0 {
		body := slices.Clone(m.out[base:])
		slices.SortStableFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		m.out = appendLong(m.out[:base], int64(len(entries)))
		for _, e := range entries {
			m.out = append(m.out, body[e.start-base:e.end-base]...)
		}
	}
	m.out = appendLong(m.out, 0)
	return nil
}

func (m *machine) record(p *plan) error {
	if p.inOrder || m.discard > 0 {
		for _, f := range p.fields {
			if f.skip {
				m.discard++
			}
			err := m.run(f.p)
			if f.skip {
				m.discard--
			}
			if err != nil {
				return inField(f.name, err)
			}
		}
		return nil
	}
	base := len(m.out)
	spans := make([][2]int, len(p.fields))
	for i, f := range p.fields {
		if f.skip {
			m.discard++
		}
		start := len(m.out)
		err := m.run(f.p)
		if f.skip {
			m.discard--
		}
		if err != nil {
			return inField(f.name, err)
		}
		spans[i] = [2]int{start - base, len(m.out) - base}
	}
	body := slices.Clone(m.out[base:])
	m.out = m.out[:base]
	for _, o := range p.order {
		if o.from < 0 {
			m.out = append(m.out, o.def...)
			continue
		}
		s := spans[o.from]
		m.out = append(m.out, body[s[0]:s[1]]...)
	}
	return nil
}
