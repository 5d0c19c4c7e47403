package io.rifflestream.bench.kafkastreams;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Event time is the record timestamp, which the loader sets to the event's dateTime: the same
 * definition every system of the benchmark uses.
 */
public final class EventTime implements TimestampExtractor {
  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    return record.timestamp();
  }
}
