package lakehouse.bi;

import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SubqueryExpression;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.SubqueryAlias;
import org.apache.spark.sql.catalyst.plans.logical.View;
import scala.Function1;
import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * A Spark session extension (spark.sql.extensions) that makes every session of the BI endpoint
 * read-only: queries, SHOW, DESCRIBE, USE and reading a setting pass; any other command (SET of a
 * value, CREATE, DROP, INSERT, ADD JAR, ...), script transforms, reflection calls and reading the
 * unfiltered tables other than through a view are refused.
 * Together with spark.sql.runSQLOnFiles=false it leaves the views of the `marts` database (filtered
 * by the session's user) as the only way to rows. The server's own session, which builds those views,
 * is trusted by identity (jobs/bi/server.py calls trust() before the Thrift server starts).
 */
public final class ReadOnlyGuard extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {
  private static volatile SparkSession trusted = null;
  // The database of the unfiltered tables the marts views read (jobs/bi/server.py INTERNAL_DATABASE).
  public static final String INTERNAL_DATABASE = "internal_unfiltered";

  private static final Set<String> ALLOWED_COMMANDS = Set.of(
      "ShowTables", "ShowTablesCommand", "ShowTableExtended", "ShowTablesExtended", "ShowViews",
      "ShowViewsCommand", "ShowNamespaces", "ShowNamespacesCommand", "ShowColumns", "ShowColumnsCommand",
      "ShowFunctions", "ShowFunctionsCommand", "ShowCatalogs", "ShowCatalogsCommand", "ShowCurrentNamespace",
      "ShowCurrentNamespaceCommand", "DescribeRelation", "DescribeTableCommand", "DescribeColumn",
      "DescribeColumnCommand", "DescribeNamespace", "DescribeDatabaseCommand", "DescribeFunction",
      "DescribeFunctionCommand", "DescribeQueryCommand", "SetCatalogAndNamespace", "SetNamespaceCommand",
      "SetCatalogCommand", "SetCommand");

  // Settings the Thrift server itself gives each new session.
  private static final Set<String> SESSION_SETTINGS = Set.of("spark.sql.hive.version", "spark.sql.datetime.java8API.enabled");

  public static synchronized void trust(SparkSession session) {
    if (trusted != null && trusted != session) {
      throw new SecurityException("the BI endpoint already trusts another session");
    }
    trusted = session;
  }

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectCheckRule(new AbstractFunction1<SparkSession, Function1<LogicalPlan, BoxedUnit>>() {
      @Override
      public Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
        return new Check(session);
      }
    });
    return BoxedUnit.UNIT;
  }

  private static final class Check extends AbstractFunction1<LogicalPlan, BoxedUnit> {
    private final SparkSession session;

    Check(SparkSession session) {
      this.session = session;
    }

    @Override
    public BoxedUnit apply(LogicalPlan plan) {
      // The analyzer also checks each view's body on its own while it resolves the view (from
      // ViewResolution); those bodies were written by the server (sessions here cannot create
      // views) and read the unfiltered tables by design. The statement's whole plan is checked
      // afterwards, with the views in it as View nodes.
      if (session != trusted && !resolvingAView()) {
        checkSettings(session);
        checkPlan(plan);
      }
      return BoxedUnit.UNIT;
    }
  }

  /**
   * A client can also change settings when it opens a session (`set:hiveconf:key=value` in the
   * session configuration), which no SET statement passes through: refuse to run anything in a
   * session whose Spark settings differ from the server's (spark.sql.runSQLOnFiles above all).
   */
  static void checkSettings(SparkSession session) {
    SparkSession server = trusted;
    if (server == null) {
      refuse("the BI endpoint is not ready yet");
    }
    Map<String, String> mine = CollectionConverters.asJava(session.conf().getAll());
    Map<String, String> servers = CollectionConverters.asJava(server.conf().getAll());
    for (Map.Entry<String, String> setting : mine.entrySet()) {
      String key = setting.getKey();
      if (key.startsWith("spark.") && !SESSION_SETTINGS.contains(key) && !Objects.equals(setting.getValue(), servers.get(key))) {
        refuse("this session changed the setting " + key + ", which the BI endpoint does not allow");
      }
    }
  }

  private static boolean resolvingAView() {
    return StackWalker.getInstance().walk(frames -> frames.anyMatch(
        frame -> frame.getClassName().startsWith("org.apache.spark.sql.catalyst.analysis.ViewResolution")));
  }

  static void checkPlan(LogicalPlan plan) {
    String name = plan.getClass().getSimpleName();
    if (plan instanceof Command && !ALLOWED_COMMANDS.contains(name)) {
      refuse("the BI endpoint is read-only: " + name + " is not allowed (queries, SHOW, DESCRIBE and USE are)");
    }
    if (name.equals("SetCommand") && setsAValue(plan)) {
      refuse("the BI endpoint is read-only: settings cannot be changed (SET key=value)");
    }
    if (name.contains("ScriptTransformation")) {
      refuse("the BI endpoint does not run scripts (TRANSFORM ... USING)");
    }
    if (plan instanceof View) {
      // A view's own body was written by the server; its plan has nothing a user typed.
      return;
    }
    if (plan instanceof SubqueryAlias alias && alias.identifier().qualifier().contains(INTERNAL_DATABASE)) {
      refuse("only the views of the marts database can be read; " + INTERNAL_DATABASE
          + " holds the unfiltered tables behind them");
    }
    scala.collection.Iterator<Expression> expressions = plan.expressions().iterator();
    while (expressions.hasNext()) {
      checkExpression(expressions.next());
    }
    scala.collection.Iterator<LogicalPlan> children = plan.children().iterator();
    while (children.hasNext()) {
      checkPlan(children.next());
    }
  }

  private static void checkExpression(Expression expression) {
    if (expression.getClass().getSimpleName().contains("Reflect")) {
      refuse("the BI endpoint does not call Java methods (reflect, java_method)");
    }
    if (expression instanceof SubqueryExpression subquery) {
      checkPlan(subquery.plan());
    }
    scala.collection.Iterator<Expression> children = expression.children().iterator();
    while (children.hasNext()) {
      checkExpression(children.next());
    }
  }

  @SuppressWarnings("unchecked")
  private static boolean setsAValue(LogicalPlan plan) {
    // SetCommand(kv: Option[(String, Option[String])]): `SET` and `SET key` only read.
    Option<Tuple2<String, Option<String>>> kv = (Option<Tuple2<String, Option<String>>>) plan.productElement(0);
    return kv.isDefined() && kv.get()._2().isDefined();
  }

  private static void refuse(String message) {
    throw new SecurityException(message);
  }
}
