package io.registrymirror.testing;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * A self-signed RSA certificate and its key, made with the JDK's {@code keytool} (the JDK has no
 * public API to make a certificate, but ships this tool), and written out as PEM files too: for
 * a TLS listener, or for signing tokens.
 *
 * @param cert the certificate
 * @param key its private key
 * @param certPem the certificate as a PEM file
 * @param keyPem the key as a PKCS#8 PEM file
 */
public record TestCertificate(X509Certificate cert, PrivateKey key, Path certPem, Path keyPem) {

  private static final String ALIAS = "test";

  /**
   * Makes one in {@code dir}, for {@code commonName} and, when given, subject alternative names
   * such as {@code ip:127.0.0.1} or {@code dns:localhost}.
   */
  public static TestCertificate generate(Path dir, String commonName, String... altNames)
      throws IOException, InterruptedException {
    Path store = dir.resolve(ALIAS + "-" + UUID.randomUUID() + ".p12");
    String password = UUID.randomUUID().toString();
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "keytool").toString(), "-genkeypair",
        "-alias", ALIAS, "-keyalg", "RSA", "-keysize", "2048", "-sigalg", "SHA256withRSA",
        "-dname", "CN=" + commonName,
        // Backdated, so that a peer whose clock is a little behind ours still finds it valid.
        "-startdate", "-1d", "-validity", "2",
        "-storetype", "PKCS12", "-keystore", store.toString(),
        "-storepass", password, "-keypass", password));
    if (altNames.length > 0) {
      command.addAll(List.of("-ext", "SAN=" + String.join(",", altNames)));
    }
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
      process.destroyForcibly();
      throw new IllegalStateException("keytool failed: " + output);
    }
    try {
      KeyStore keys = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(store)) {
        keys.load(in, password.toCharArray());
      }
      X509Certificate cert = (X509Certificate) keys.getCertificate(ALIAS);
      PrivateKey key = (PrivateKey) keys.getKey(ALIAS, password.toCharArray());
      String name = store.getFileName().toString().replace(".p12", "");
      Path certPem = Files.writeString(dir.resolve(name + ".crt"), pem("CERTIFICATE", cert.getEncoded()));
      Path keyPem = Files.writeString(dir.resolve(name + ".key"), pem("PRIVATE KEY", key.getEncoded()));
      Files.delete(store);
      return new TestCertificate(cert, key, certPem, keyPem);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot load the generated key", e);
    }
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }

  /** A TLS context that trusts this certificate alone, for a client of a server that presents it. */
  public SSLContext trustingContext() throws GeneralSecurityException, IOException {
    return context(trustManager(cert));
  }

  /**
   * A TLS context that trusts the certificate of a PEM file alone, at whatever name or address
   * it is presented: a test reaches on 127.0.0.1 a server whose certificate names another host.
   */
  public static SSLContext trustingAtAnyAddress(Path certPem) throws GeneralSecurityException, IOException {
    X509Certificate cert;
    try (InputStream in = Files.newInputStream(certPem)) {
      cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
    X509TrustManager chain = trustManager(cert);
    // The JDK uses an extended trust manager as it is and checks the server's name in its own
    // only: this one checks the chain, not the name.
    return context(new X509ExtendedTrustManager() {
      @Override
      public void checkServerTrusted(X509Certificate[] certs, String auth, Socket socket) throws CertificateException {
        chain.checkServerTrusted(certs, auth);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] certs, String auth, SSLEngine engine) throws CertificateException {
        chain.checkServerTrusted(certs, auth);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] certs, String auth) throws CertificateException {
        chain.checkServerTrusted(certs, auth);
      }

      @Override
      public void checkClientTrusted(X509Certificate[] certs, String auth, Socket socket) throws CertificateException {
        throw new CertificateException("a client's trust only");
      }

      @Override
      public void checkClientTrusted(X509Certificate[] certs, String auth, SSLEngine engine) throws CertificateException {
        throw new CertificateException("a client's trust only");
      }

      @Override
      public void checkClientTrusted(X509Certificate[] certs, String auth) throws CertificateException {
        throw new CertificateException("a client's trust only");
      }

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        return chain.getAcceptedIssuers();
      }
    });
  }

  private static X509TrustManager trustManager(X509Certificate cert) throws GeneralSecurityException, IOException {
    KeyStore trusted = KeyStore.getInstance("PKCS12");
    trusted.load(null, null);
    trusted.setCertificateEntry("server", cert);
    TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    factory.init(trusted);
    return (X509TrustManager) factory.getTrustManagers()[0];
  }

  private static SSLContext context(TrustManager trust) throws GeneralSecurityException {
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(null, new TrustManager[] {trust}, null);
    return context;
  }
}
