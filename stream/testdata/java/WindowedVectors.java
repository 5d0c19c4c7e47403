// WindowedVectors prints the bytes Kafka Streams' own windowed serializers write
// (TimeWindowedSerializer, SessionWindowedSerializer) for string keys and a few windows, one line
// each: "<kind> <key> <start> <end> <hex>". stream's windowed serde tests read
// stream/testdata/windowed_vectors.txt; they never run Java.
//
// Regenerate from the repository root (Java 17+; the kafka-streams jar comes from Maven Central,
// e.g. with `mvn dependency:get -Dartifact=org.apache.kafka:kafka-streams:4.4.0`):
//
//	java -cp "$HOME/.m2/repository/org/apache/kafka/kafka-streams/4.4.0/kafka-streams-4.4.0.jar:$HOME/.cache/riffle/kafka-4.4.0/libs/*" \
//	    stream/testdata/java/WindowedVectors.java > stream/testdata/windowed_vectors.txt

import java.util.HexFormat;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.kstream.SessionWindowedSerializer;
import org.apache.kafka.streams.kstream.TimeWindowedSerializer;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.internals.SessionWindow;
import org.apache.kafka.streams.kstream.internals.TimeWindow;

public class WindowedVectors {
    public static void main(String[] args) {
        HexFormat hex = HexFormat.of();
        TimeWindowedSerializer<String> time = new TimeWindowedSerializer<>(Serdes.String().serializer());
        SessionWindowedSerializer<String> session = new SessionWindowedSerializer<>(Serdes.String().serializer());
        String[] keys = {"a", "page/home", "café", ""};
        long[][] windows = {{0, 60000}, {1767225600000L, 1767225660000L}, {5, 15}, {1234567890123L, 1234567890123L}};
        System.out.println("# kind key start end hex, from Kafka Streams 4.4.0");
        for (String k : keys) {
            for (long[] w : windows) {
                byte[] t = time.serialize("t", new Windowed<>(k, new TimeWindow(w[0], Math.max(w[1], w[0] + 1))));
                System.out.println("time " + q(k) + " " + w[0] + " " + Math.max(w[1], w[0] + 1) + " " + hex.formatHex(t));
                byte[] s = session.serialize("t", new Windowed<>(k, new SessionWindow(w[0], w[1])));
                System.out.println("session " + q(k) + " " + w[0] + " " + w[1] + " " + hex.formatHex(s));
            }
        }
    }

    private static String q(String s) {
        return s.isEmpty() ? "\"\"" : s;
    }
}
