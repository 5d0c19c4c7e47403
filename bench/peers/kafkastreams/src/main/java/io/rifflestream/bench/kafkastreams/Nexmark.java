package io.rifflestream.bench.kafkastreams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The Nexmark wire format of bench/nexmark/FORMAT.md: byte 0 is the kind, then big-endian int64
 * fields, then strings as a 4-byte big-endian length and UTF-8 bytes. The Go implementation is
 * bench/nexmark/codec.go; both must produce the same bytes.
 */
final class Nexmark {
  static final byte KIND_PERSON = 0;
  static final byte KIND_AUCTION = 1;
  static final byte KIND_BID = 2;

  /** Length of a bid's kind byte and four int64 fields; its strings follow. */
  static final int BID_FIXED = 1 + 4 * 8;

  private static final int BID_AUCTION_AT = 1;
  private static final int BID_PRICE_AT = 17;

  private Nexmark() {}

  /** Whether an encoded event is a bid, by its kind byte. */
  static boolean isBid(byte[] value) {
    return value != null && value.length >= BID_FIXED && value[0] == KIND_BID;
  }

  /** The auction of an encoded bid, read in place. */
  static long bidAuction(byte[] bid) {
    return ByteBuffer.wrap(bid).getLong(BID_AUCTION_AT);
  }

  /** The price of an encoded bid, in cents, read in place. */
  static long bidPrice(byte[] bid) {
    return ByteBuffer.wrap(bid).getLong(BID_PRICE_AT);
  }

  /** Two big-endian int64s: a q2 value (auction, price) or a window key (auction, start). */
  static byte[] pair(long a, long b) {
    return ByteBuffer.allocate(16).putLong(a).putLong(b).array();
  }

  /** A bid event. */
  record Bid(long auction, long bidder, long price, long dateTime, String channel, String url, String extra) {

    static Bid decode(byte[] value) {
      if (!isBid(value)) {
        throw new IllegalArgumentException("nexmark: not an encoded bid");
      }
      ByteBuffer in = ByteBuffer.wrap(value);
      in.position(1);
      long auction = in.getLong();
      long bidder = in.getLong();
      long price = in.getLong();
      long dateTime = in.getLong();
      String channel = readString(in);
      String url = readString(in);
      String extra = readString(in);
      if (in.hasRemaining()) {
        throw new IllegalArgumentException("nexmark: " + in.remaining() + " trailing bytes after a bid");
      }
      return new Bid(auction, bidder, price, dateTime, channel, url, extra);
    }

    Bid withPrice(long newPrice) {
      return new Bid(auction, bidder, newPrice, dateTime, channel, url, extra);
    }

    byte[] encode() {
      byte[] c = channel.getBytes(StandardCharsets.UTF_8);
      byte[] u = url.getBytes(StandardCharsets.UTF_8);
      byte[] e = extra.getBytes(StandardCharsets.UTF_8);
      ByteBuffer out = ByteBuffer.allocate(BID_FIXED + 12 + c.length + u.length + e.length);
      out.put(KIND_BID).putLong(auction).putLong(bidder).putLong(price).putLong(dateTime);
      out.putInt(c.length).put(c).putInt(u.length).put(u).putInt(e.length).put(e);
      return out.array();
    }
  }

  private static String readString(ByteBuffer in) {
    int n = in.getInt();
    if (n < 0 || n > in.remaining()) {
      throw new IllegalArgumentException("nexmark: string of " + n + " bytes overruns the event");
    }
    String s = new String(in.array(), in.arrayOffset() + in.position(), n, StandardCharsets.UTF_8);
    in.position(in.position() + n);
    return s;
  }
}
