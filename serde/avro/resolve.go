package avro

import (
	"fmt"
	"strings"
)

// resolve.go: schema resolution, compiled. A plan reads bytes written with the writer's schema
// and writes the same value as bytes of the reader's schema, following the spec's "Schema
// Resolution" rules; goavro then decodes the result with the reader's codec. With the writer's
// schema as reader too, a plan only checks the bytes (and, when asked, sorts map entries).

type op uint8

const (
	opNull op = iota
	opBoolean
	opInt
	opLong
	opIntToLong
	opIntToFloat
	opIntToDouble
	opLongToFloat
	opLongToDouble
	opFloat
	opFloatToDouble
	opDouble
	opBytes // bytes or string, read as bytes or string: the encodings are the same
	opFixed
	opEnum
	opArray
	opMap
	opRecord
	opUnion   // the writer's type is a union: per branch, what to read and which branch to write
	opToUnion // the reader's type is a union and the writer's is not: write the branch index
	opFail    // this writer branch cannot be read: fail when a value actually takes it
)

type plan struct {
	op   op
	min  int // the fewest bytes a writer value takes: bounds collection block counts
	size int // fixed

	enum  []int64  // writer symbol index to reader symbol index, -1 when the reader has neither symbol nor default
	wsyms []string // writer symbols, for errors

	elem *plan // array items, map values, the inner plan of opToUnion

	index int64 // opToUnion: the reader branch written

	fields  []fieldPlan // record: the writer's fields in writer order
	order   []fieldOut  // record: the reader's fields in reader order
	inOrder bool        // record: writer and reader fields match one to one, in the same order

	branches []*plan // opUnion: per writer branch
	toIndex  []int64 // opUnion: per writer branch, the reader branch to write; -1 when the reader is no union

	err error // opFail
}

type fieldPlan struct {
	name string // the writer's field name
	p    *plan
	skip bool // the reader has no such field: read and drop
}

type fieldOut struct {
	from int    // index into plan.fields of the writer field that provides the value; -1: def
	def  []byte // the encoded default, when from is -1
}

// planner builds plans, memoized per (writer, reader) pair so recursive schemas give finite,
// cyclic plans.
type planner struct {
	memo  map[[2]*schema]*plan
	added [][2]*schema
}

// newPlan returns the plan that reads values of w as values of r, or an error wrapping
// ErrIncompatibleSchema when no value of w can be read as r. Errors that depend on the data
// (an enum symbol or union branch the reader lacks) are kept in the plan for when they occur.
func newPlan(w, r *schema) (*plan, error) {
	pl := &planner{memo: map[[2]*schema]*plan{}}
	return pl.build(w, r)
}

func (pl *planner) build(w, r *schema) (*plan, error) {
	key := [2]*schema{w, r}
	if p, ok := pl.memo[key]; ok {
		return p, nil
	}
	p := &plan{min: w.min}
	mark := len(pl.added)
	pl.memo[key] = p
	pl.added = append(pl.added, key)
	if err := pl.fill(p, w, r); err != nil {
		// Forget every plan made since: some may point at p, which is unfinished.
		for _, k := range pl.added[mark:] {
			delete(pl.memo, k)
		}
		pl.added = pl.added[:mark]
		return nil, err
	}
	return p, nil
}

func (pl *planner) fill(p *plan, w, r *schema) error {
	if w.kind == kindUnion {
		return pl.fromUnion(p, w, r)
	}
	if r.kind == kindUnion {
		i := pickBranch(w, r)
		if i < 0 {
			return incompatible("writer's %s matches no branch of reader's %s", typeLabel(w), typeLabel(r))
		}
		inner, err := pl.build(w, r.branches[i])
		if err != nil {
			return err
		}
		p.op, p.index, p.elem = opToUnion, int64(i), inner
		return nil
	}
	if op, ok := primitiveOp(w.kind, r.kind); ok {
		p.op = op
		return nil
	}
	if w.kind != r.kind {
		return incompatible("writer's %s cannot be read as reader's %s", typeLabel(w), typeLabel(r))
	}
	switch w.kind {
	case kindArray, kindMap:
		elem, err := pl.build(w.items, r.items)
		if err != nil {
			return err
		}
		p.op, p.elem = opArray, elem
		if w.kind == kindMap {
			p.op = opMap
		}
		return nil
	case kindFixed:
		if !namesMatch(w, r) || w.size != r.size {
			return incompatible("writer's fixed %s (size %d) cannot be read as reader's fixed %s (size %d)", w.name, w.size, r.name, r.size)
		}
		p.op, p.size = opFixed, w.size
		return nil
	case kindEnum:
		if !namesMatch(w, r) {
			return incompatible("writer's enum %s cannot be read as reader's enum %s", w.name, r.name)
		}
		p.op, p.wsyms = opEnum, w.symbols
		p.enum = make([]int64, len(w.symbols))
		for i, sym := range w.symbols {
			j := indexOf(r.symbols, sym)
			if j < 0 {
				j = r.enumDef
			}
			p.enum[i] = int64(j)
		}
		return nil
	case kindRecord:
		return pl.record(p, w, r)
	}
	return incompatible("writer's %s cannot be read as reader's %s", typeLabel(w), typeLabel(r))
}

func (pl *planner) fromUnion(p *plan, w, r *schema) error {
	p.op = opUnion
	p.branches = make([]*plan, len(w.branches))
	p.toIndex = make([]int64, len(w.branches))
	var first error
	ok := 0
	for i, wb := range w.branches {
		target, idx := r, int64(-1)
		if r.kind == kindUnion {
			j := pickBranch(wb, r)
			if j < 0 {
				err := incompatible("writer's union branch %s matches no branch of reader's %s", typeLabel(wb), typeLabel(r))
				p.branches[i], p.toIndex[i] = &plan{op: opFail, err: err}, -1
				first = firstErr(first, err)
				continue
			}
			target, idx = r.branches[j], int64(j)
		}
		bp, err := pl.build(wb, target)
		if err != nil {
			bp, idx = &plan{op: opFail, err: err}, -1
			first = firstErr(first, err)
		} else {
			ok++
		}
		p.branches[i], p.toIndex[i] = bp, idx
	}
	if ok == 0 {
		return first
	}
	return nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (pl *planner) record(p *plan, w, r *schema) error {
	if !namesMatch(w, r) {
		return incompatible("writer's record %s cannot be read as reader's record %s", w.name, r.name)
	}
	p.op = opRecord
	byName := map[string]int{}
	for j, f := range r.fields {
		byName[f.name] = j
	}
	for j, f := range r.fields {
		for _, a := range f.aliases {
			if _, taken := byName[a]; !taken {
				byName[a] = j
			}
		}
	}
	from := make([]int, len(r.fields))
	for j := range from {
		from[j] = -1
	}
	p.inOrder = len(w.fields) == len(r.fields)
	for i, wf := range w.fields {
		j, ok := byName[wf.name]
		if !ok || from[j] >= 0 {
			skip, err := pl.build(wf.typ, wf.typ)
			if err != nil {
				return inField(wf.name, err)
			}
			p.fields = append(p.fields, fieldPlan{name: wf.name, p: skip, skip: true})
			p.inOrder = false
			continue
		}
		fp, err := pl.build(wf.typ, r.fields[j].typ)
		if err != nil {
			return inField(r.fields[j].name, err)
		}
		from[j] = i
		p.fields = append(p.fields, fieldPlan{name: wf.name, p: fp})
		if j != i {
			p.inOrder = false
		}
	}
	for j, rf := range r.fields {
		if from[j] >= 0 {
			p.order = append(p.order, fieldOut{from: from[j]})
			continue
		}
		p.inOrder = false
		if !rf.hasDef {
			return inField(rf.name, incompatible("reader's record %s has field %q without a default, and the writer's record %s has no such field", r.name, rf.name, w.name))
		}
		def, err := encodeDefault(nil, rf.typ, rf.def)
		if err != nil {
			return inField(rf.name, fmt.Errorf("reader's default: %w", err))
		}
		p.order = append(p.order, fieldOut{from: -1, def: def})
	}
	return nil
}

// primitiveOp is the plan step for a primitive writer type read as a primitive reader type,
// including the spec's promotions.
func primitiveOp(w, r kind) (op, bool) {
	switch {
	case w == r:
		switch w {
		case kindNull:
			return opNull, true
		case kindBoolean:
			return opBoolean, true
		case kindInt:
			return opInt, true
		case kindLong:
			return opLong, true
		case kindFloat:
			return opFloat, true
		case kindDouble:
			return opDouble, true
		case kindBytes, kindString:
			return opBytes, true
		}
	case w == kindInt && r == kindLong:
		return opIntToLong, true
	case w == kindInt && r == kindFloat:
		return opIntToFloat, true
	case w == kindInt && r == kindDouble:
		return opIntToDouble, true
	case w == kindLong && r == kindFloat:
		return opLongToFloat, true
	case w == kindLong && r == kindDouble:
		return opLongToDouble, true
	case w == kindFloat && r == kindDouble:
		return opFloatToDouble, true
	case w == kindString && r == kindBytes, w == kindBytes && r == kindString:
		return opBytes, true
	}
	return 0, false
}

// namesMatch: named types resolve when their unqualified names match, or when one of the
// reader's aliases names the writer's type.
func namesMatch(w, r *schema) bool {
	if w.name == r.name || shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name || (!strings.Contains(a, ".") && a == shortName(w.name)) || shortName(a) == shortName(w.name) {
			return true
		}
	}
	return false
}

// pickBranch picks the reader union branch that a value of w is read as: the first branch of
// the same type (and name), else the first that w promotes to. -1 when none fits.
func pickBranch(w, r *schema) int {
	for i, b := range r.branches {
		if b.kind == w.kind && (b.name == "" || namesMatch(w, b)) {
			return i
		}
	}
	for i, b := range r.branches {
		if _, ok := primitiveOp(w.kind, b.kind); ok {
			return i
		}
	}
	return -1
}
