package io.rifflestream.bench.kafkastreams;

import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * The Kafka Streams peer of the Riffle benchmark. It takes the benchmark's system contract
 * (bench/README.md):
 *
 * <pre>
 * java -jar riffle-bench-kafkastreams.jar -workload q1 -brokers HOST:PORT -input IN -output OUT \
 *     -app-id ID -threads 2 [-state-dir DIR]
 * </pre>
 *
 * and runs until SIGTERM, when it closes Kafka Streams (committing what it processed) and exits.
 * A stream thread's uncaught exception stops the application with exit code 1.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws InterruptedException {
    Map<String, String> flags = parse(args);
    String workload = flags.get("workload");
    if (!Arrays.asList(Workloads.NAMES).contains(workload)) {
      usage("unknown -workload " + workload);
    }

    KafkaStreams streams = new KafkaStreams(
        Workloads.build(workload, flags.get("input"), flags.get("output")), properties(flags));
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicInteger exitCode = new AtomicInteger();
    AtomicBoolean terminating = new AtomicBoolean();

    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("kafkastreams: stream thread failed: " + e);
      e.printStackTrace();
      exitCode.set(1);
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) {
        System.err.println("kafkastreams: running");
      }
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      terminating.set(true);
      streams.close(Duration.ofSeconds(30));
      stopped.countDown();
    }, "shutdown"));

    streams.start();
    stopped.await();
    if (terminating.get()) {
      return; // the shutdown hook closes Kafka Streams and the JVM exits after it
    }
    streams.close(Duration.ofSeconds(30));
    System.exit(exitCode.get() != 0 ? exitCode.get() : 1);
  }

  /** The benchmark's shared settings (bench/README.md), the rest Kafka Streams' defaults. */
  static Properties properties(Map<String, String> flags) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, flags.get("app-id"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, flags.get("brokers"));
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, flags.get("threads"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 10L * 1024 * 1024);
    p.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, EventTime.class);
    if (flags.containsKey("state-dir")) {
      p.put(StreamsConfig.STATE_DIR_CONFIG, flags.get("state-dir"));
    }
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    p.put(StreamsConfig.producerPrefix(ProducerConfig.ACKS_CONFIG), "all");
    p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "none");
    p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
    p.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1024 * 1024);
    return p;
  }

  private static Map<String, String> parse(String[] args) {
    Map<String, String> flags = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("-") || i + 1 >= args.length) {
        usage("bad argument " + a);
      }
      flags.put(a.replaceFirst("^--?", ""), args[++i]);
    }
    for (String required : new String[] {"workload", "brokers", "input", "output", "app-id", "threads"}) {
      if (!flags.containsKey(required)) {
        usage("-" + required + " is required");
      }
    }
    return flags;
  }

  private static void usage(String problem) {
    System.err.println("kafkastreams: " + problem);
    System.err.println("usage: -workload q0|q1|q2|count|q7|q5 -brokers HOST:PORT -input TOPIC -output TOPIC"
        + " -app-id ID -threads N [-state-dir DIR]");
    System.exit(2);
  }
}
