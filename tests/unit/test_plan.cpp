// Unit tests for plan.hpp: make_plan() priority and origins, lock order, wait limits,
// the command's environment, and choose_config_source().
#include "build_info.hpp"
#include "config.hpp"
#include "error.hpp"
#include "plan.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using loto::CliOptions;
using loto::Config;
using loto::Duration;
using loto::make_plan;
using loto::Plan;
using Strings = std::vector<std::string>;
using namespace std::chrono_literals;

namespace {

// A directory that does not exist, so that lock paths under it are compared as written.
const std::string k_nowhere = "/nonexistent-loto-unit";

CliOptions run(const Strings& locks) {
  CliOptions cli;
  cli.locks = locks;
  cli.command = {"true"};
  return cli;
}

Config config_of(const std::string& text) {
  return loto::parse_config(text, "test.yaml");
}

loto::SettingView setting(const Plan& plan, const std::string& key) {
  const auto it = std::find_if(plan.settings.begin(),
                               plan.settings.end(),
                               [&](const loto::SettingView& s) { return s.key == key; });
  INFO("setting: " << key);
  REQUIRE(it != plan.settings.end());
  return *it;
}

// "value <- origin" for compact assertions.
std::string shown(const Plan& plan, const std::string& key) {
  const auto view = setting(plan, key);
  return view.value + " <- " + view.origin;
}

std::string usage_error(const CliOptions& cli, const Config& config) {
  try {
    (void)make_plan(cli, config, {});
  } catch (const loto::Error& e) {
    CHECK(e.exit_code() == 64);
    return e.what();
  }
  FAIL("make_plan accepted the locks");
  return {};
}

Strings names_of(const Plan& plan) {
  Strings names;
  for (const auto& lock : plan.locks) {
    names.push_back(lock.name);
  }
  return names;
}

Strings paths_of(const Plan& plan) {
  Strings paths;
  for (const auto& lock : plan.locks) {
    paths.push_back(lock.path);
  }
  return paths;
}

// Line numbers matter: origins are asserted as test.yaml:LINE.
const char* const k_layers = R"(lock_dir: /srv/locks
defaults:
  wait: true
  timeout: 5
  conflict_exit_code: 10
  inherit_lock: false
logging:
  syslog: false
  facility: daemon
  ident: audit
  level: warning
resources:
  db:
    wait: false
    timeout: 250ms
    conflict_exit_code: 20
    inherit_lock: true
  web:
    path: /srv/web.lock
    description: the web server
)";

} // namespace

TEST_CASE("make_plan applies built-in, defaults, resource and command line in priority order",
          "[plan]") {
  SECTION("built-in only") {
    const Plan plan = make_plan(run({"cpu"}), Config{}, {});
    CHECK(plan.action == loto::Action::run);
    REQUIRE(plan.locks.size() == 1);
    CHECK(plan.locks[0].name == "cpu");
    CHECK(plan.locks[0].path == std::string(loto::k_default_lock_dir) + "/loto.cpu");
    CHECK(plan.locks[0].path == "/var/lock/loto.cpu");
    CHECK(plan.wait_limit == std::optional<Duration>(Duration::zero()));
    CHECK(plan.conflict_exit_code == 75);
    CHECK(plan.inherit_lock);
    CHECK(plan.log.syslog);
    CHECK(plan.log.facility == "user");
    CHECK(plan.log.ident == "loto");
    CHECK(plan.log.level == "info");
    CHECK(plan.command == Strings{"true"});

    CHECK(shown(plan, "lock_dir") == "/var/lock <- built-in");
    CHECK(shown(plan, "wait") == "false <- built-in");
    CHECK(shown(plan, "timeout") == "none <- built-in");
    CHECK(shown(plan, "conflict_exit_code") == "75 <- built-in");
    CHECK(shown(plan, "inherit_lock") == "true <- built-in");
    CHECK(shown(plan, "metrics_dir") == "none <- built-in");
    CHECK(shown(plan, "logging.syslog") == "true <- built-in");
    CHECK(shown(plan, "logging.facility") == "user <- built-in");
    CHECK(shown(plan, "logging.ident") == "loto <- built-in");
    CHECK(shown(plan, "logging.level") == "info <- built-in");
    CHECK(shown(plan, "lock cpu") == "/var/lock/loto.cpu <- built-in");
    CHECK(shown(plan, "mode") == "exclusive <- built-in");
    CHECK(shown(plan, "max_runtime") == "none <- built-in");
    CHECK(shown(plan, "kill_after") == "10s <- built-in");
    CHECK(shown(plan, "warn_after") == "none <- built-in");
    CHECK(shown(plan, "leftovers") == "leave <- built-in");
    CHECK(shown(plan, "slots cpu") == "1 <- built-in");
    CHECK(shown(plan, "queue cpu") == "fifo <- built-in");
    CHECK(plan.settings.size() == 19);
  }

  SECTION("defaults: wins over built-in") {
    const Plan plan = make_plan(run({"cpu"}), config_of(k_layers), {});
    REQUIRE(plan.locks.size() == 1);
    CHECK(plan.locks[0].path == "/srv/locks/loto.cpu");
    CHECK(plan.wait_limit == std::optional<Duration>(5s));
    CHECK(plan.conflict_exit_code == 10);
    CHECK_FALSE(plan.inherit_lock);
    CHECK_FALSE(plan.log.syslog);
    CHECK(plan.log.facility == "daemon");
    CHECK(plan.log.ident == "audit");
    CHECK(plan.log.level == "warning");

    CHECK(shown(plan, "lock_dir") == "/srv/locks <- test.yaml:1");
    CHECK(shown(plan, "wait") == "true <- test.yaml:3");
    CHECK(shown(plan, "timeout") == "5s <- test.yaml:4");
    CHECK(shown(plan, "conflict_exit_code") == "10 <- test.yaml:5");
    CHECK(shown(plan, "inherit_lock") == "false <- test.yaml:6");
    CHECK(shown(plan, "logging.syslog") == "false <- test.yaml:8");
    CHECK(shown(plan, "logging.facility") == "daemon <- test.yaml:9");
    CHECK(shown(plan, "logging.ident") == "audit <- test.yaml:10");
    CHECK(shown(plan, "logging.level") == "warning <- test.yaml:11");
    CHECK(shown(plan, "lock cpu") == "/srv/locks/loto.cpu <- lock_dir at test.yaml:1");
  }

  SECTION("resources.NAME wins over defaults") {
    const Plan plan = make_plan(run({"db"}), config_of(k_layers), {});
    REQUIRE(plan.locks.size() == 1);
    CHECK(plan.locks[0].name == "db");
    CHECK(plan.locks[0].path == "/srv/locks/loto.db");
    CHECK(plan.wait_limit == std::optional<Duration>(250ms));
    CHECK(plan.conflict_exit_code == 20);
    CHECK(plan.inherit_lock);

    CHECK(shown(plan, "wait") == "false <- test.yaml:14");
    CHECK(shown(plan, "timeout") == "250ms <- test.yaml:15");
    CHECK(shown(plan, "conflict_exit_code") == "20 <- test.yaml:16");
    CHECK(shown(plan, "inherit_lock") == "true <- test.yaml:17");
    CHECK(shown(plan, "lock db") == "/srv/locks/loto.db <- lock_dir at test.yaml:1");
  }

  SECTION("command line wins over all") {
    CliOptions cli = run({"db"});
    cli.wait = true;
    cli.timeout = 1s;
    cli.conflict_exit_code = 30;
    cli.close_lock = true;
    cli.verbosity = 2;
    const Plan plan = make_plan(cli, config_of(k_layers), {});
    CHECK(plan.wait_limit == std::optional<Duration>(1s));
    CHECK(plan.conflict_exit_code == 30);
    CHECK_FALSE(plan.inherit_lock);
    CHECK(plan.log.verbosity == 2);
    CHECK_FALSE(plan.log.quiet);

    CHECK(shown(plan, "wait") == "true <- command line");
    CHECK(shown(plan, "timeout") == "1s <- command line");
    CHECK(shown(plan, "conflict_exit_code") == "30 <- command line");
    CHECK(shown(plan, "inherit_lock") == "false <- command line");
    // Settings the command line cannot change keep their origin.
    CHECK(shown(plan, "lock_dir") == "/srv/locks <- test.yaml:1");
    CHECK(shown(plan, "logging.facility") == "daemon <- test.yaml:9");
  }
}

TEST_CASE("make_plan describes every resource for --list", "[plan]") {
  const Plan plan = make_plan(run({"cpu"}), config_of(k_layers), {});
  REQUIRE(plan.resources.size() == 4);
  CHECK(plan.resources[0].name == "cpu");
  CHECK(plan.resources[0].target.path == "/srv/locks/loto.cpu");
  CHECK(plan.resources[0].policy == "wait up to 5s");
  CHECK(plan.resources[0].origin == "built-in");
  CHECK(plan.resources[0].description == "processor-heavy batch jobs, one at a time");
  CHECK(plan.resources[1].name == "db");
  CHECK(plan.resources[1].target.path == "/srv/locks/loto.db");
  CHECK(plan.resources[1].policy == "wait up to 250ms");
  CHECK(plan.resources[1].origin == "test.yaml:13");
  CHECK(plan.resources[2].name == "net");
  CHECK(plan.resources[2].description == "bandwidth-heavy transfers, one at a time");
  CHECK(plan.resources[3].name == "web");
  CHECK(plan.resources[3].target.path == "/srv/web.lock");
  CHECK(plan.resources[3].description == "the web server");
  CHECK(plan.resources[3].origin == "test.yaml:18");

  const Plan builtin = make_plan(run({"cpu"}), Config{}, {});
  REQUIRE(builtin.resources.size() == 2);
  CHECK(builtin.resources[0].name == "cpu");
  CHECK(builtin.resources[0].target.path == "/var/lock/loto.cpu");
  CHECK(builtin.resources[0].policy == "no wait");
  CHECK(builtin.resources[1].name == "net");
  CHECK(builtin.resources[1].target.path == "/var/lock/loto.net");

  const Plan waiting = make_plan(run({"cpu"}), config_of("defaults:\n  wait: true\n"), {});
  CHECK(waiting.resources[0].policy == "wait");
}

TEST_CASE("quiet makes a busy lock exit 0 unless a conflict code was set", "[plan]") {
  CliOptions cli = run({"cpu"});
  cli.quiet = true;
  const Plan quiet = make_plan(cli, Config{}, {});
  CHECK(quiet.conflict_exit_code == 0);
  CHECK(quiet.log.quiet);
  CHECK(shown(quiet, "conflict_exit_code") == "0 <- built-in");

  const Plan configured = make_plan(cli, config_of("defaults:\n  conflict_exit_code: 10\n"), {});
  CHECK(configured.conflict_exit_code == 10);
  CHECK(shown(configured, "conflict_exit_code") == "10 <- test.yaml:2");

  // a configured code stays with -q (db's is 20 in k_layers)
  CHECK(make_plan(run({"db"}), config_of(k_layers), {}).conflict_exit_code == 20);
  CliOptions quiet_db = run({"db"});
  quiet_db.quiet = true;
  CHECK(make_plan(quiet_db, config_of(k_layers), {}).conflict_exit_code == 20);

  cli.conflict_exit_code = 75;
  CHECK(make_plan(cli, Config{}, {}).conflict_exit_code == 75);
  cli.conflict_exit_code = 5;
  CHECK(make_plan(cli, config_of("defaults:\n  conflict_exit_code: 10\n"), {}).conflict_exit_code ==
        5);
}

TEST_CASE("resource lock paths default to lock_dir/loto.NAME", "[plan]") {
  CHECK(paths_of(make_plan(run({"net"}), Config{}, {})) == Strings{"/var/lock/loto.net"});
  CHECK(paths_of(make_plan(run({"net"}), config_of("lock_dir: /run/x\n"), {})) ==
        Strings{"/run/x/loto.net"});
  CHECK(paths_of(make_plan(run({"gpu"}), config_of("resources:\n  gpu:\n"), {})) ==
        Strings{"/var/lock/loto.gpu"});
  const Plan web = make_plan(run({"web"}), config_of(k_layers), {});
  CHECK(paths_of(web) == Strings{"/srv/web.lock"});
  CHECK(shown(web, "lock web") == "/srv/web.lock <- test.yaml:19");
  // A built-in resource can be moved by the config.
  CHECK(paths_of(make_plan(run({"cpu"}),
                           config_of("resources:\n  cpu:\n    path: /x/cpu.lock\n"),
                           {})) == Strings{"/x/cpu.lock"});
  // A path is used as given.
  const Plan path = make_plan(run({"/tmp/data.txt"}), config_of(k_layers), {});
  REQUIRE(path.locks.size() == 1);
  CHECK(path.locks[0].name == "/tmp/data.txt");
  CHECK(path.locks[0].path == "/tmp/data.txt");
  CHECK(shown(path, "lock /tmp/data.txt") == "/tmp/data.txt <- command line");
}

TEST_CASE("an unknown resource is a usage error with a suggestion", "[plan]") {
  CHECK(
      usage_error(run({"cpuu"}), Config{}) ==
      std::string("unknown resource 'cpuu', did you mean 'cpu'? (known: cpu, net; define it in ") +
          loto::k_default_config_path + ")");
  CHECK(usage_error(run({"zzzzzz"}), Config{}) ==
        std::string("unknown resource 'zzzzzz' (known: cpu, net; define it in ") +
            loto::k_default_config_path + ")");
  CHECK(usage_error(run({"dv"}), config_of(k_layers)) ==
        "unknown resource 'dv', did you mean 'db'? (known: cpu, db, net, web; define it in "
        "test.yaml)");
  // The first unknown one is reported even after known ones.
  CHECK_THAT(usage_error(run({"cpu", "nett"}), Config{}),
             Catch::StartsWith("unknown resource 'nett', did you mean 'net'?"));
}

TEST_CASE("invalid lock names and paths are usage errors", "[plan]") {
  CHECK(usage_error(run({"-x"}), Config{}) == "invalid resource name '-x' (a letter or digit, then "
                                              "up to 63 of A-Z a-z 0-9 . _ -; paths contain '/')");
  CHECK_THAT(usage_error(run({""}), Config{}), Catch::StartsWith("invalid resource name ''"));
  CHECK_THAT(usage_error(run({"a b"}), Config{}), Catch::StartsWith("invalid resource name 'a b'"));
  CHECK_THAT(usage_error(run({"a\nb"}), Config{}),
             Catch::StartsWith("invalid resource name 'a\\nb'"));
  CHECK(usage_error(run({"tmp/x"}), Config{}) == "invalid lock path 'tmp/x': it is not an absolute "
                                                 "path (use an absolute path, or a resource name)");
  CHECK(usage_error(run({"/tmp/../etc/x"}), Config{}) ==
        "invalid lock path '/tmp/../etc/x': it contains a '..' component (use an absolute path, or "
        "a resource name)");
  CHECK_THAT(usage_error(run({"/tmp/a\nb"}), Config{}),
             Catch::Contains("contains control characters"));
}

TEST_CASE("several locks are sorted by path and de-duplicated", "[plan]") {
  const Plan plan = make_plan(
      run({k_nowhere + "/c", k_nowhere + "/a", k_nowhere + "/b", k_nowhere + "/a"}), Config{}, {});
  CHECK(paths_of(plan) == Strings{k_nowhere + "/a", k_nowhere + "/b", k_nowhere + "/c"});

  // Names sort by their lock path, not by name or command-line order.
  const Config config = config_of("lock_dir: " + k_nowhere +
                                  "\nresources:\n  zz:\n    path: " + k_nowhere + "/0-first\n");
  const Plan named = make_plan(run({"net", "cpu", "zz", "cpu"}), config, {});
  CHECK(names_of(named) == Strings{"zz", "cpu", "net"});
  CHECK(paths_of(named) ==
        Strings{k_nowhere + "/0-first", k_nowhere + "/loto.cpu", k_nowhere + "/loto.net"});
  CHECK(shown(named, "lock cpu") == k_nowhere + "/loto.cpu <- lock_dir at test.yaml:1");

  // A name and the path it maps to are one lock.
  const Plan same = make_plan(run({"cpu", k_nowhere + "/loto.cpu"}), config, {});
  CHECK(paths_of(same) == Strings{k_nowhere + "/loto.cpu"});
  CHECK(names_of(same) == Strings{"cpu"});

  // Both orders of the command line give the same plan order.
  CHECK(paths_of(make_plan(run({"cpu", "net"}), Config{}, {})) ==
        paths_of(make_plan(run({"net", "cpu"}), Config{}, {})));
}

TEST_CASE("two spellings of one lock file through a symlinked directory are one lock", "[plan]") {
  std::string templ = "/tmp/loto-plan-XXXXXX";
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  const std::string dir = templ;
  REQUIRE(::mkdir((dir + "/real").c_str(), 0755) == 0);
  REQUIRE(::symlink("real", (dir + "/link").c_str()) == 0);

  const Plan plan =
      make_plan(run({dir + "/link/f", dir + "/real/f", dir + "/real/e"}), Config{}, {});
  CHECK(paths_of(plan) == Strings{dir + "/real/e", dir + "/link/f"});

  (void)std::system(("rm -rf '" + dir + "'").c_str());
}

TEST_CASE("lock files are taken in the order of their full paths one component at a time",
          "[plan]") {
  std::string templ = "/tmp/loto-plan-XXXXXX";
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  const std::string dir = templ;
  REQUIRE(::mkdir((dir + "/a").c_str(), 0755) == 0);

  // "DIR/a/b" sorts before "DIR/z": the component "a" before "z", whatever the depth
  CHECK(paths_of(make_plan(run({dir + "/z", dir + "/a/b"}), Config{}, {})) ==
        Strings{dir + "/a/b", dir + "/z"});
  CHECK(paths_of(make_plan(run({dir + "/a/b", dir + "/z"}), Config{}, {})) ==
        Strings{dir + "/a/b", dir + "/z"});

  (void)std::system(("rm -rf '" + dir + "'").c_str());
}

TEST_CASE("lock files of one name in two directories are two locks", "[plan]") {
  std::string templ = "/tmp/loto-plan-XXXXXX";
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  const std::string dir = templ;
  REQUIRE(::mkdir((dir + "/a").c_str(), 0755) == 0);
  REQUIRE(::mkdir((dir + "/b").c_str(), 0755) == 0);

  CHECK(paths_of(make_plan(run({dir + "/b/f", dir + "/a/f"}), Config{}, {})) ==
        Strings{dir + "/a/f", dir + "/b/f"});

  (void)std::system(("rm -rf '" + dir + "'").c_str());
}

TEST_CASE("the waiting setting names the layer that decided it", "[plan]") {
  const Config config = config_of("defaults:\n  wait: true\n");
  CHECK(shown(make_plan(run({"cpu"}), config, {}), "waiting") == "wait <- test.yaml:2");
  CliOptions cli = run({"cpu"});
  cli.timeout = 5s;
  CHECK(shown(make_plan(cli, config, {}), "waiting") == "wait up to 5s <- command line");
}

TEST_CASE("a configured etcd section reaches the plan and --show-config", "[plan][etcd]") {
  const Config config = config_of(R"(etcd:
  endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]
  ttl: 30s
)");
  const Plan plan = make_plan(run({"cpu"}), config, {});
  CHECK(plan.etcd.ttl == 30s);
  CHECK(plan.etcd.endpoints == Strings{"http://10.0.0.1:2379", "http://10.0.0.2:2379"});
  CHECK(shown(plan, "etcd.ttl") == "30s <- test.yaml:3");
  CHECK(shown(plan, "etcd.endpoints") ==
        "http://10.0.0.1:2379,http://10.0.0.2:2379 <- test.yaml:2");
  CHECK(shown(plan, "etcd.prefix") == "loto/ <- built-in");
}

TEST_CASE("a resource with backend flock is a lock file, even when etcd is set up", "[plan]") {
  const Config config = config_of(R"(lock_dir: /nonexistent-loto-unit
etcd:
  endpoints: [http://127.0.0.1:2379]
resources:
  db:
    backend: flock
)");
  const Plan plan = make_plan(run({"db"}), config, {});
  REQUIRE(plan.locks.size() == 1);
  CHECK(plan.locks[0].kind == loto::LockKind::flock);
  CHECK(plan.locks[0].path == "/nonexistent-loto-unit/loto.db");
}

TEST_CASE("a configured metrics_dir reaches the plan and --show-config", "[plan]") {
  const Plan plan = make_plan(run({"cpu"}), config_of("metrics_dir: /var/lib/loto-unit\n"), {});
  CHECK(plan.metrics_dir == "/var/lib/loto-unit");
  CHECK(shown(plan, "metrics_dir") == "/var/lib/loto-unit <- test.yaml:1");
}

TEST_CASE("wait_limit follows -w, -t and the config", "[plan]") {
  CliOptions cli = run({"cpu"});
  SECTION("no wait") {
    CHECK(make_plan(cli, Config{}, {}).wait_limit == std::optional<Duration>(Duration::zero()));
  }
  SECTION("-w waits as long as it takes") {
    cli.wait = true;
    CHECK_FALSE(make_plan(cli, Config{}, {}).wait_limit.has_value());
  }
  SECTION("-t 0 does not wait, even with -w or a config wait") {
    cli.timeout = 0s;
    CHECK(make_plan(cli, Config{}, {}).wait_limit == std::optional<Duration>(Duration::zero()));
    cli.wait = true;
    CHECK(make_plan(cli, Config{}, {}).wait_limit == std::optional<Duration>(Duration::zero()));
    CHECK(make_plan(cli, config_of("defaults:\n  wait: true\n  timeout: 1h\n"), {}).wait_limit ==
          std::optional<Duration>(Duration::zero()));
  }
  SECTION("-t 5 waits 5 seconds") {
    cli.timeout = 5s;
    CHECK(make_plan(cli, Config{}, {}).wait_limit == std::optional<Duration>(5s));
    CHECK(make_plan(cli, config_of("defaults:\n  timeout: 1h\n"), {}).wait_limit ==
          std::optional<Duration>(5s));
  }
  SECTION("config timeout") {
    CHECK(make_plan(cli, config_of("defaults:\n  timeout: 30\n"), {}).wait_limit ==
          std::optional<Duration>(30s));
    CHECK(make_plan(cli, config_of("defaults:\n  timeout: 0\n  wait: true\n"), {}).wait_limit ==
          std::optional<Duration>(Duration::zero()));
    CHECK_FALSE(make_plan(cli, config_of("defaults:\n  wait: true\n"), {}).wait_limit.has_value());
    CHECK(
        make_plan(run({"db"}), config_of("resources:\n  db:\n    timeout: 90s\n"), {}).wait_limit ==
        std::optional<Duration>(90s));
    // Another resource's settings do not apply.
    CHECK(make_plan(cli, config_of("resources:\n  db:\n    timeout: 90s\n"), {}).wait_limit ==
          std::optional<Duration>(Duration::zero()));
  }
}

// Priority: resources.NAME wins over defaults, so a resource that says `wait: false`
// does not wait for a timeout set under defaults:.
TEST_CASE("a resource with wait false does not wait for the defaults timeout", "[plan]") {
  const Config config = config_of("defaults:\n  timeout: 10\nresources:\n  db:\n    wait: false\n");
  const Plan plan = make_plan(run({"db"}), config, {});
  CHECK(shown(plan, "wait") == "false <- test.yaml:5");
  CHECK(plan.wait_limit == std::optional<Duration>(Duration::zero()));
  REQUIRE(plan.resources.size() == 3);
  CHECK(plan.resources[1].name == "db");
  CHECK(plan.resources[1].policy == "no wait");
}

TEST_CASE("the command environment gains LOTO_RESOURCE and LOTO_LOCKFILE", "[plan]") {
  const Strings environment{"PATH=/usr/bin:/bin",
                            "LOTO_RESOURCE=stale",
                            "HOME=/root",
                            "LOTO_LOCKFILE=/stale",
                            "LOTO_RESOURCES=kept",
                            "XLOTO_RESOURCE=kept",
                            "EMPTY="};
  const Plan plan = make_plan(run({"net", "cpu"}), Config{}, environment);
  CHECK(plan.command_environment == Strings{"PATH=/usr/bin:/bin",
                                            "HOME=/root",
                                            "LOTO_RESOURCES=kept",
                                            "XLOTO_RESOURCE=kept",
                                            "EMPTY=",
                                            "LOTO_RESOURCE=cpu,net",
                                            "LOTO_LOCKFILE=/var/lock/loto.cpu,/var/lock/loto.net"});
  CHECK(plan.lock_names == "cpu,net");
  CHECK(plan.lock_paths == "/var/lock/loto.cpu,/var/lock/loto.net");

  const Plan path = make_plan(run({"/tmp/x.lock"}), Config{}, {});
  CHECK(path.command_environment ==
        Strings{"LOTO_RESOURCE=/tmp/x.lock", "LOTO_LOCKFILE=/tmp/x.lock"});
}

TEST_CASE("make_plan passes the action, command and config files through", "[plan]") {
  CliOptions cli;
  cli.action = loto::Action::list;
  const Plan list = make_plan(cli, Config{}, {});
  CHECK(list.action == loto::Action::list);
  CHECK(list.locks.empty());

  Config config = config_of("lock_dir: /a\n");
  loto::merge_config(config, loto::parse_config("lock_dir: /b\n", "drop.yaml"));
  CliOptions with_command = run({"cpu"});
  with_command.command = {"sh", "-c", "echo $LOTO_RESOURCE", ""};
  const Plan plan = make_plan(with_command, config, {});
  CHECK(plan.command == Strings{"sh", "-c", "echo $LOTO_RESOURCE", ""});
  CHECK(plan.config_files == "test.yaml, drop.yaml");
  CHECK(shown(plan, "lock_dir") == "/b <- drop.yaml:1");
}

TEST_CASE("choose_config_source prefers --config then LOTO_CONFIG then the system file", "[plan]") {
  CliOptions cli;
  const auto system = loto::choose_config_source(cli, {"PATH=/bin"});
  CHECK(system.path == loto::k_default_config_path);
  CHECK_FALSE(system.must_exist);

  const auto from_env = loto::choose_config_source(cli, {"PATH=/bin", "LOTO_CONFIG=/env.yaml"});
  CHECK(from_env.path == "/env.yaml");
  CHECK(from_env.must_exist);

  const auto empty_env = loto::choose_config_source(cli, {"LOTO_CONFIG="});
  CHECK(empty_env.path == loto::k_default_config_path);
  CHECK_FALSE(empty_env.must_exist);

  const auto other =
      loto::choose_config_source(cli, {"XLOTO_CONFIG=/x.yaml", "LOTO_CONFIGS=/y.yaml"});
  CHECK(other.path == loto::k_default_config_path);

  cli.config_path = "/flag.yaml";
  const auto from_flag = loto::choose_config_source(cli, {"LOTO_CONFIG=/env.yaml"});
  CHECK(from_flag.path == "/flag.yaml");
  CHECK(from_flag.must_exist);
}

TEST_CASE("etcd resources become etcd locks named by the prefix", "[plan][etcd]") {
  const Config config = config_of(R"(lock_dir: /nonexistent-loto-unit
etcd:
  endpoints: [http://127.0.0.1:2379]
  prefix: fleet/
resources:
  report:
    backend: etcd
  db: {}
)");
  const Plan plan = make_plan(run({"report", "db"}), config, {"LOTO_FENCING_TOKEN=7"});
  REQUIRE(plan.locks.size() == 2);
  // Local paths sort before "etcd:" names: one global order on every host.
  CHECK(plan.locks[0].kind == loto::LockKind::flock);
  CHECK(plan.locks[0].path == "/nonexistent-loto-unit/loto.db");
  CHECK(plan.locks[1].kind == loto::LockKind::etcd);
  CHECK(plan.locks[1].etcd_name == "fleet/report");
  CHECK(plan.locks[1].path == "etcd:fleet/report");
  CHECK(plan.etcd.endpoints == Strings{"http://127.0.0.1:2379"});
  CHECK(plan.etcd.ttl == 10s);
  CHECK(shown(plan, "etcd.ttl") == "10s <- built-in");
  CHECK(shown(plan, "etcd.prefix") == "fleet/ <- test.yaml:4");
  CHECK(shown(plan, "lock report") == "etcd:fleet/report <- test.yaml:7");
  // An inherited token belongs to an outer loto's lock: the executor sets the real one.
  CHECK(std::find(plan.command_environment.begin(),
                  plan.command_environment.end(),
                  "LOTO_FENCING_TOKEN=7") == plan.command_environment.end());
}

TEST_CASE("backend etcd without endpoints is a config error at the backend key", "[plan][etcd]") {
  const Config config = config_of("resources:\n  report:\n    backend: etcd\n");
  try {
    (void)make_plan(run({"cpu"}), config, {});
    FAIL("make_plan accepted an etcd resource without endpoints");
  } catch (const loto::Error& e) {
    CHECK(e.exit_code() == 78);
    CHECK(std::string(e.what()) ==
          "test.yaml:3:14: resource 'report' uses backend etcd, but no etcd endpoints are set; add "
          "an etcd: section with endpoints: [http://HOST:2379, ...]");
  }
}

TEST_CASE("the live waiting line is off with -q or TERM=dumb", "[plan]") {
  CHECK(make_plan(run({"cpu"}), Config{}, {"TERM=xterm"}).log.live_status);
  CHECK(make_plan(run({"cpu"}), Config{}, {}).log.live_status);
  CHECK_FALSE(make_plan(run({"cpu"}), Config{}, {"TERM=dumb"}).log.live_status);
  CliOptions quiet = run({"cpu"});
  quiet.quiet = true;
  CHECK_FALSE(make_plan(quiet, Config{}, {"TERM=xterm"}).log.live_status);
}

TEST_CASE("job limits layer defaults, the resource and the command line", "[plan][limits]") {
  const Config config = config_of("defaults:\n"
                                  "  max_runtime: 1h\n"
                                  "  leftovers: wait\n"
                                  "resources:\n"
                                  "  backup:\n"
                                  "    max_runtime: 2h\n"
                                  "    warn_after: 20m\n"
                                  "    kill_after: 30s\n");
  SECTION("the resource wins over defaults") {
    const Plan plan = make_plan(run({"backup"}), config, {});
    CHECK(plan.limits.max_runtime == std::optional<Duration>(2h));
    CHECK(plan.limits.warn_after == std::optional<Duration>(20min));
    CHECK(plan.limits.kill_after == Duration(30s));
    CHECK(plan.limits.leftovers == loto::LeftoverMode::wait);
    CHECK(shown(plan, "max_runtime") == "2h <- test.yaml:6");
    CHECK(shown(plan, "leftovers") == "wait <- test.yaml:3");
  }
  SECTION("defaults apply to a resource that sets nothing") {
    const Plan plan = make_plan(run({"cpu"}), config, {});
    CHECK(plan.limits.max_runtime == std::optional<Duration>(1h));
    CHECK_FALSE(plan.limits.warn_after.has_value());
    CHECK(plan.limits.kill_after == Duration(10s));
  }
  SECTION("the command line wins over both") {
    CliOptions cli = run({"backup"});
    cli.max_runtime = 5s;
    cli.kill_after = 1s;
    cli.leftovers = "kill";
    const Plan plan = make_plan(cli, config, {});
    CHECK(plan.limits.max_runtime == std::optional<Duration>(5s));
    CHECK(plan.limits.kill_after == Duration(1s));
    CHECK(plan.limits.leftovers == loto::LeftoverMode::kill);
    CHECK(shown(plan, "max_runtime") == "5s <- command line");
  }
}

TEST_CASE("slots and queue come from the resource, then defaults", "[plan][queue]") {
  const Config config = config_of("lock_dir: " + k_nowhere +
                                  "\n"
                                  "defaults:\n"
                                  "  queue: fifo\n"
                                  "resources:\n"
                                  "  gz:\n"
                                  "    slots: 4\n"
                                  "  any:\n"
                                  "    slots: auto\n"
                                  "    queue: none\n");
  const Plan gz = make_plan(run({"gz"}), config, {});
  REQUIRE(gz.locks.size() == 1);
  CHECK(gz.locks[0].slots == 4);
  CHECK(gz.locks[0].fifo);
  CHECK(shown(gz, "slots gz") == "4 <- test.yaml:6");
  CHECK(shown(gz, "queue gz") == "fifo <- test.yaml:3");
  const Plan any = make_plan(run({"any"}), config, {});
  CHECK(any.locks[0].slots == static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  CHECK_FALSE(any.locks[0].fifo);
  // The built-in cpu keeps one slot; a path lock follows defaults: for its queue.
  CHECK(make_plan(run({"cpu"}), config, {}).locks[0].slots == 1);
  CHECK(make_plan(run({"/tmp/x.lock"}), config, {}).locks[0].fifo);
  const auto policy = [&](const std::string& name) {
    for (const auto& resource : gz.resources) {
      if (resource.name == name) {
        return resource.policy;
      }
    }
    return std::string("?");
  };
  CHECK(policy("gz") == "no wait, 4 slots");
  CHECK_THAT(policy("any"), Catch::Matchers::EndsWith(", unordered"));
}

TEST_CASE("shared runs take local locks shared and are refused where there is no shared mode",
          "[plan][shared]") {
  CliOptions cli = run({"cpu", "/tmp/x.lock"});
  cli.shared = true;
  const Plan plan = make_plan(cli, Config{}, {});
  for (const auto& lock : plan.locks) {
    CHECK(lock.shared);
  }
  CHECK(shown(plan, "mode") == "shared <- command line");
  CliOptions slotted = run({"gz"});
  slotted.shared = true;
  CHECK(usage_error(slotted, config_of("resources:\n  gz:\n    slots: 2\n")) ==
        "resource 'gz' has 2 slots, which are not taken shared (drop -s)");
  CliOptions fleet = run({"db"});
  fleet.shared = true;
  CHECK(usage_error(fleet,
                    config_of("etcd:\n  endpoints: http://127.0.0.1:2379\n"
                              "resources:\n  db:\n    backend: etcd\n")) ==
        "resource 'db' is an etcd lock, which has no shared mode (drop -s, or use a local "
        "resource)");
}

TEST_CASE("slots on an etcd resource: a number is the fleet's bound, auto is a config error",
          "[plan][etcd]") {
  const std::string etcd = "etcd:\n  endpoints: http://127.0.0.1:2379\n";
  const Config config = config_of(etcd + "resources:\n  db:\n    backend: etcd\n    slots: 3\n"
                                         "  one:\n    backend: etcd\n");
  const Plan plan = make_plan(run({"db"}), config, {});
  REQUIRE(plan.locks.size() == 1);
  CHECK(plan.locks[0].kind == loto::LockKind::etcd);
  CHECK(plan.locks[0].slots == 3);
  CHECK(shown(plan, "slots db") == "3 <- test.yaml:6");
  const Plan one = make_plan(run({"one"}), config, {});
  CHECK(one.locks[0].slots == 1);
  CHECK(shown(one, "slots one") == "1 <- built-in");
  for (const auto& resource : plan.resources) {
    if (resource.name == "db") {
      CHECK(resource.policy == "no wait, 3 slots");
    }
  }
  try {
    (void)make_plan(run({"db"}),
                    config_of(etcd + "resources:\n  db:\n    backend: etcd\n    slots: auto\n"),
                    {});
    FAIL("accepted");
  } catch (const loto::Error& e) {
    CHECK(e.exit_code() == 78);
    CHECK_THAT(std::string(e.what()),
               Catch::Matchers::StartsWith("test.yaml:6:12: resource 'db' uses backend etcd, "
                                           "where slots: auto has no meaning"));
  }
  CliOptions slotted = run({"db"});
  slotted.shared = true;
  CHECK(usage_error(slotted, config) ==
        "resource 'db' has 3 slots, which are not taken shared (drop -s)");
}
