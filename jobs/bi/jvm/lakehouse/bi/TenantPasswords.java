package lakehouse.bi;

import java.security.MessageDigest;
import java.security.spec.KeySpec;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The BI endpoint's logins (hive.server2.authentication=CUSTOM): a user name and a PBKDF2-SHA256
 * hash of its password, registered by the Python process that starts the server (jobs/bi/server.py)
 * from the credentials file, then sealed. The Thrift server's default (NONE) accepts any password.
 */
public final class TenantPasswords implements PasswdAuthenticationProvider {
  private static final Map<String, Login> LOGINS = new ConcurrentHashMap<>();
  private static volatile boolean sealed = false;
  // Unknown users cost the same hashing as known ones, so timing does not tell which names exist.
  private static final Login NOBODY = new Login(new byte[16], 600_000, new byte[32]);

  private record Login(byte[] salt, int iterations, byte[] hash) {}

  public static void register(String user, String saltHex, int iterations, String hashHex) {
    if (sealed) {
      throw new SecurityException("BI logins are sealed once the server starts");
    }
    HexFormat hex = HexFormat.of();
    LOGINS.put(user, new Login(hex.parseHex(saltHex), iterations, hex.parseHex(hashHex)));
  }

  public static void seal() {
    sealed = true;
  }

  public static int count() {
    return LOGINS.size();
  }

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    Login login = LOGINS.getOrDefault(user == null ? "" : user, NOBODY);
    byte[] presented = pbkdf2(password == null ? "" : password, login.salt(), login.iterations(), login.hash().length);
    if (login == NOBODY || !MessageDigest.isEqual(presented, login.hash())) {
      throw new AuthenticationException("wrong user name or password for the BI endpoint");
    }
  }

  static byte[] pbkdf2(String password, byte[] salt, int iterations, int length) throws AuthenticationException {
    try {
      KeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, length * 8);
      return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
    } catch (Exception error) {
      throw new AuthenticationException("cannot check the password", error);
    }
  }
}
