package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// registry.go: the Confluent wire format and the registry calls behind it, each made once per
// schema id or subject and cached.

const headerSize = 5 // magic byte 0, then the schema id as 4 bytes big-endian

func appendHeader(b []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0), uint32(id))
}

// splitHeader returns the schema id and the Avro payload behind the header.
func splitHeader(data []byte) (int, []byte, error) {
	if len(data) == 0 {
		return -1, nil, truncated("empty record, want the 5-byte wire format header")
	}
	if data[0] != 0 {
		return -1, nil, classed(ErrBadMagicByte, "got 0x%02x, want 0x00 (was this written with the Confluent wire format?)", data[0])
	}
	if len(data) < headerSize {
		return -1, nil, truncated("%d bytes, want at least the 5-byte wire format header", len(data))
	}
	return int(binary.BigEndian.Uint32(data[1:headerSize])), data[headerSize:], nil
}

func (c *core) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.cfg.timeout)
}

// readPlan returns how to read values written with the schema registered under id.
func (c *core) readPlan(id int) (*readPlan, error) {
	return load(&c.mu, c.reads, id, func() (*readPlan, error) {
		ctx, cancel := c.ctx()
		defer cancel()
		s, err := c.cfg.registry.SchemaByID(ctx, id)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && (re.ErrorCode == sr.ErrSchemaNotFound.Code || re.StatusCode == 404) {
				return nil, classed(ErrUnknownSchemaID, "the registry has no schema %d: %v", id, err)
			}
			return nil, fmt.Errorf("looking up schema %d in the registry: %w", id, err)
		}
		if s.Type != sr.TypeAvro {
			return nil, incompatible("schema %d is %s, not Avro", id, s.Type)
		}
		if len(s.References) > 0 {
			return nil, incompatible("schema %d references other schemas, which this serde does not resolve", id)
		}
		writer, err := parseSchema(s.Schema)
		if err != nil {
			return nil, incompatible("schema %d from the registry does not parse: %v", id, err)
		}
		// A resolution error keeps its field path on top, for Error.Field.
		return c.readPlanFor(writer)
	})
}

// writeTarget returns the schema id (and conversion, with UseLatestVersion) that Serialize
// writes with under subject.
func (c *core) writeTarget(subject string) (*writeTo, error) {
	return load(&c.mu, c.writes, subject, func() (*writeTo, error) {
		ctx, cancel := c.ctx()
		defer cancel()
		cl := c.cfg.registry
		own := sr.Schema{Schema: c.text, Type: sr.TypeAvro}
		switch {
		case c.cfg.useLatest:
			latest, err := cl.SchemaByVersion(ctx, subject, -1)
			if err != nil {
				if isNotFound(err) {
					return nil, classed(ErrSchemaNotRegistered, "subject %q has no versions: %v", subject, err)
				}
				return nil, fmt.Errorf("fetching the latest schema of subject %q: %w", subject, err)
			}
			if latest.Type != sr.TypeAvro || len(latest.References) > 0 {
				return nil, incompatible("latest schema %d of subject %q is not a plain Avro schema", latest.ID, subject)
			}
			ls, err := parseSchema(latest.Schema.Schema)
			if err != nil {
				return nil, incompatible("latest schema %d of subject %q does not parse: %v", latest.ID, subject, err)
			}
			if canonical(ls) == c.canon {
				return &writeTo{id: latest.ID}, nil
			}
			p, err := newPlan(c.schema, ls)
			if err != nil {
				return nil, err
			}
			return &writeTo{id: latest.ID, resolve: p}, nil
		case c.cfg.autoRegister:
			id, err := cl.RegisterSchema(ctx, subject, own, -1, -1)
			if err != nil {
				var re *sr.ResponseError
				if errors.As(err, &re) && (re.ErrorCode == sr.ErrIncompatibleSchema.Code || re.StatusCode == 409) {
					return nil, incompatible("the registry refused the schema under subject %q: %v", subject, err)
				}
				return nil, fmt.Errorf("registering the schema under subject %q: %w", subject, err)
			}
			return &writeTo{id: id}, nil
		default:
			ss, err := cl.LookupSchema(ctx, subject, own)
			if err != nil {
				if isNotFound(err) {
					return nil, classed(ErrSchemaNotRegistered, "the schema is not registered under subject %q (and auto-registration is off): %v", subject, err)
				}
				return nil, fmt.Errorf("looking up the schema under subject %q: %w", subject, err)
			}
			return &writeTo{id: ss.ID}, nil
		}
	})
}

func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == 404
}
