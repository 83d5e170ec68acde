package io.registrymirror.oci;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The manifest media types a client accepts, merged from every {@code Accept} header line.
 *
 * <p>Docker and containers/image send one line per type, containerd one comma-joined line: reading
 * only the first line would make the upstream pick the wrong type, so all are merged.
 */
public final class AcceptedTypes {

  private final Set<String> types;
  private final boolean any;

  private AcceptedTypes(Set<String> types, boolean any) {
    this.types = types;
    this.any = any;
  }

  public static AcceptedTypes parse(List<String> headerLines) {
    Set<String> types = new LinkedHashSet<>();
    boolean any = false;
    for (String line : headerLines) {
      for (String item : line.split(",")) {
        String type = MediaTypes.bare(item);
        if (type.isEmpty() || rejected(item)) {
          continue;
        }
        if (type.equals("*/*") || type.equals("application/*")) {
          any = true;
        } else {
          types.add(type);
        }
      }
    }
    // No Accept at all means the client takes whatever the registry has.
    return new AcceptedTypes(types, any || types.isEmpty());
  }

  /** {@code q=0} explicitly refuses a type. */
  private static boolean rejected(String item) {
    for (String param : item.split(";")) {
      String p = param.trim().replace(" ", "");
      if (p.equals("q=0") || p.equals("q=0.0") || p.equals("q=0.00") || p.equals("q=0.000")) {
        return true;
      }
    }
    return false;
  }

  public boolean accepts(String mediaType) {
    return any || types.contains(MediaTypes.bare(mediaType));
  }

  /**
   * The Accept header to send upstream: the client's manifest types without schema 1, or every
   * modern type when the client accepts anything. Never empty, since a registry given no Accept
   * may fall back to schema 1.
   */
  public String upstreamHeader() {
    return header(any);
  }

  /**
   * For a digest the content is fixed whatever its type, so every modern type is accepted on
   * top of the client's: a registry must not refuse exact content over negotiation.
   */
  public String upstreamHeaderForDigest() {
    return header(true);
  }

  private String header(boolean addModern) {
    List<String> out = new ArrayList<>();
    for (String type : types) {
      if (!MediaTypes.isSchema1(type) && type.startsWith("application/vnd.")) {
        out.add(type);
      }
    }
    if (addModern) {
      for (String type : MediaTypes.MODERN_MANIFESTS) {
        if (!out.contains(type)) {
          out.add(type);
        }
      }
    }
    if (out.isEmpty()) {
      out.addAll(MediaTypes.MODERN_MANIFESTS);
    }
    return String.join(", ", out);
  }
}
