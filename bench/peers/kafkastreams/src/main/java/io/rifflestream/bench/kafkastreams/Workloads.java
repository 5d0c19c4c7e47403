package io.rifflestream.bench.kafkastreams;

import java.time.Duration;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The workloads of bench/WORKLOADS.md in the Kafka Streams DSL, each written the way the DSL
 * documentation writes it. Bids are keyed by their auction on the input topic, so no workload
 * needs a repartition topic: the aggregations group by the existing key.
 */
final class Workloads {
  static final long EURO_NUMERATOR = 908;
  static final long EURO_DENOMINATOR = 1000;
  static final long Q2_MODULUS = 123;
  static final Duration WINDOW_SIZE = Duration.ofSeconds(10);
  static final Duration HOP_ADVANCE = Duration.ofSeconds(2);

  private Workloads() {}

  static final String[] NAMES = {"q0", "q1", "q2", "count", "q7", "q5"};

  static Topology build(String workload, String input, String output) {
    StreamsBuilder builder = new StreamsBuilder();
    switch (workload) {
      case "q0" -> raw(builder, input).to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
      case "q1" -> raw(builder, input)
          .filter((key, value) -> Nexmark.isBid(value))
          .mapValues(Workloads::inEuros)
          .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
      case "q2" -> raw(builder, input)
          .filter((key, value) -> Nexmark.isBid(value) && Nexmark.bidAuction(value) % Q2_MODULUS == 0)
          .mapValues(value -> Nexmark.pair(Nexmark.bidAuction(value), Nexmark.bidPrice(value)))
          .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
      case "count" -> bids(builder, input)
          .groupByKey(Grouped.with(Serdes.Long(), Serdes.ByteArray()))
          .count(Materialized.<Long, Long, KeyValueStore<Bytes, byte[]>>as("bids-per-auction"))
          .toStream()
          .to(output, Produced.with(Serdes.Long(), Serdes.Long()));
      case "q7" -> bids(builder, input)
          .mapValues(Nexmark::bidPrice)
          .groupByKey(Grouped.with(Serdes.Long(), Serdes.Long()))
          .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW_SIZE, Duration.ZERO))
          .aggregate(
              () -> 0L,
              (auction, price, highest) -> Math.max(price, highest),
              Materialized.<Long, Long, WindowStore<Bytes, byte[]>>as("highest-bid")
                  .withKeySerde(Serdes.Long())
                  .withValueSerde(Serdes.Long()))
          .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
          .toStream()
          .map((window, highest) -> KeyValue.pair(Nexmark.pair(window.key(), window.window().start()), highest))
          .to(output, Produced.with(Serdes.ByteArray(), Serdes.Long()));
      case "q5" -> bids(builder, input)
          .groupByKey(Grouped.with(Serdes.Long(), Serdes.ByteArray()))
          .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW_SIZE, Duration.ZERO).advanceBy(HOP_ADVANCE))
          .count(Materialized.<Long, Long, WindowStore<Bytes, byte[]>>as("bids-per-window"))
          .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
          .toStream()
          .map((window, count) -> KeyValue.pair(Nexmark.pair(window.key(), window.window().start()), count))
          .to(output, Produced.with(Serdes.ByteArray(), Serdes.Long()));
      default -> throw new IllegalArgumentException("unknown workload " + workload);
    }
    return builder.build();
  }

  /** Every event, key and value as bytes. */
  private static KStream<byte[], byte[]> raw(StreamsBuilder builder, String input) {
    return builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()));
  }

  /** The bids, keyed by their auction id. */
  private static KStream<Long, byte[]> bids(StreamsBuilder builder, String input) {
    return builder.stream(input, Consumed.with(Serdes.Long(), Serdes.ByteArray()))
        .filter((auction, value) -> Nexmark.isBid(value));
  }

  /** q1: the bid re-encoded with its price converted from dollars to euros. */
  static byte[] inEuros(byte[] value) {
    Nexmark.Bid bid = Nexmark.Bid.decode(value);
    return bid.withPrice(bid.price() * EURO_NUMERATOR / EURO_DENOMINATOR).encode();
  }
}
