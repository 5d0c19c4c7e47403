package avro

import (
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Opt configures a Serde. Options are checked together in the constructor, which rejects
// combinations that contradict each other.
type Opt interface {
	apply(*cfg)
}

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }

type cfg struct {
	registry *sr.Client
	key      bool

	autoRegister    bool
	autoRegisterSet bool
	useLatest       bool
	subject         SubjectNameStrategy
	subjectSet      bool
	timeout         time.Duration
	timeoutSet      bool

	writerSchema    string
	writerSchemaSet bool
}

func defaultCfg() cfg {
	return cfg{
		autoRegister: true,
		subject:      TopicNameStrategy,
		timeout:      10 * time.Second,
	}
}

func (c *cfg) validate() error {
	if c.registry == nil {
		var needs []string
		if c.autoRegisterSet {
			needs = append(needs, "AutoRegisterSchemas")
		}
		if c.useLatest {
			needs = append(needs, "UseLatestVersion")
		}
		if c.subjectSet {
			needs = append(needs, "SubjectName")
		}
		if c.timeoutSet {
			needs = append(needs, "RegistryTimeout")
		}
		if len(needs) > 0 {
			return errors.New("avro: " + strings.Join(needs, ", ") + " need a SchemaRegistry")
		}
	}
	if c.registry != nil && c.writerSchemaSet {
		return errors.New("avro: WriterSchema is for plain Avro without a registry; with SchemaRegistry the writer's schema comes from the registry")
	}
	if c.useLatest && c.autoRegisterSet && c.autoRegister {
		return errors.New("avro: UseLatestVersion writes with the subject's latest schema and so cannot auto-register; drop AutoRegisterSchemas(true)")
	}
	if c.useLatest {
		c.autoRegister = false
	}
	if c.subject == nil {
		return errors.New("avro: SubjectName needs a strategy, got nil")
	}
	if c.timeout <= 0 {
		return errors.New("avro: RegistryTimeout must be positive")
	}
	return nil
}

// SchemaRegistry makes the serde use the Confluent wire format (a magic byte 0, the schema's
// 4-byte big-endian registry id, then the Avro binary payload) and the registry behind cl to
// register and look up schemas. Configure URLs, authentication and TLS on cl.
//
// Default: no registry; records hold plain Avro binary. Java: schema.registry.url.
func SchemaRegistry(cl *sr.Client) Opt {
	return opt{func(c *cfg) { c.registry = cl }}
}

// ForKeys makes the serde one for record keys: the topic-name strategies use the subject
// "<topic>-key" instead of "<topic>-value".
//
// Default: a serde for values. Java: the isKey argument of Serializer.configure (a serde set as
// key.serializer / key.deserializer).
func ForKeys() Opt {
	return opt{func(c *cfg) { c.key = true }}
}

// AutoRegisterSchemas sets whether Serialize registers the serde's schema under the subject the
// first time it writes to it. When false, the schema must already be registered there, or
// Serialize fails with ErrSchemaNotRegistered. A registry that refuses the schema under the
// subject's compatibility rule makes Serialize fail with ErrIncompatibleSchema.
//
// Default: true. Java: auto.register.schemas. Needs SchemaRegistry.
func AutoRegisterSchemas(enable bool) Opt {
	return opt{func(c *cfg) { c.autoRegister, c.autoRegisterSet = enable, true }}
}

// UseLatestVersion makes Serialize write with the latest schema registered under the subject,
// converting each value from the serde's schema to it (schema resolution), instead of with the
// serde's own schema. The latest version is looked up once per subject and then cached for the
// life of the serde. It implies AutoRegisterSchemas(false).
//
// Default: off. Java: use.latest.version=true (with auto.register.schemas=false and
// latest.cache.ttl.sec=-1). Needs SchemaRegistry.
func UseLatestVersion() Opt {
	return opt{func(c *cfg) { c.useLatest = true }}
}

// SubjectName sets how the registry subject is named from the topic, whether the serde is for
// keys, and the record's full name.
//
// Default: TopicNameStrategy. Java: key.subject.name.strategy / value.subject.name.strategy.
// Needs SchemaRegistry.
func SubjectName(strategy SubjectNameStrategy) Opt {
	return opt{func(c *cfg) { c.subject, c.subjectSet = strategy, true }}
}

// RegistryTimeout bounds each call to the registry that Serialize or Deserialize makes (calls
// happen only on a cache miss: a subject's first write, a schema id's first read). The
// sr.Client's own HTTP timeout applies as well.
//
// Default: 10s. Java: no single equivalent (the REST client's connect and read timeouts).
// Needs SchemaRegistry.
func RegistryTimeout(d time.Duration) Opt {
	return opt{func(c *cfg) { c.timeout, c.timeoutSet = d, true }}
}

// WriterSchema sets the schema that the plain Avro bytes this serde reads were written with,
// when it differs from the serde's own (reader) schema: Deserialize resolves each value from the
// writer's schema to the reader's. Serialize still writes with the serde's own schema. The
// constructor fails with ErrIncompatibleSchema when no value can be resolved.
//
// Default: the serde's own schema. Java: the writer schema of GenericDatumReader(writer, reader).
// Not with SchemaRegistry, where each record names its writer's schema by id.
func WriterSchema(schema string) Opt {
	return opt{func(c *cfg) { c.writerSchema, c.writerSchemaSet = schema, true }}
}

// SubjectNameStrategy names the registry subject that a serde registers and looks up its schema
// under. topic is the topic passed to Serialize, key says whether the serde is for keys
// (ForKeys), record is the full name of the schema's record.
type SubjectNameStrategy func(topic string, key bool, record string) string

// TopicNameStrategy names the subject "<topic>-key" or "<topic>-value": one schema lineage
// per topic and side. Java: io.confluent.kafka.serializers.subject.TopicNameStrategy.
func TopicNameStrategy(topic string, key bool, _ string) string {
	if key {
		return topic + "-key"
	}
	return topic + "-value"
}

// RecordNameStrategy names the subject after the record's full name, so one topic may carry
// several record types, each with its own lineage shared across topics.
// Java: io.confluent.kafka.serializers.subject.RecordNameStrategy.
func RecordNameStrategy(_ string, _ bool, record string) string {
	return record
}

// TopicRecordNameStrategy names the subject "<topic>-<record full name>": several record types
// per topic, each with a lineage of its own in each topic.
// Java: io.confluent.kafka.serializers.subject.TopicRecordNameStrategy.
func TopicRecordNameStrategy(topic string, _ bool, record string) string {
	return topic + "-" + record
}
