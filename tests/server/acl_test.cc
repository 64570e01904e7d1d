// The ACL model (server/acl.h) on the real command table, and the ACL command, AUTH, HELLO and
// the NOPERM checks through the Server, without sockets.

#include "server/acl.h"

#include "server_test_util.h"
#include "util/sha256.h"

namespace lattice::server {
namespace {

using testing::TestServer;

std::vector<std::string_view> Rules(std::initializer_list<std::string_view> rules) {
  return std::vector<std::string_view>(rules);
}

// A Server owns the complete command table an Acl resolves rules against.
struct AclFixture {
  TestServer t;
  Acl& acl() { return t.server().acl(); }
  const Command& Cmd(std::string_view name) {
    const Command* command = t.server().registry().Find(name);
    REQUIRE(command != nullptr);
    return *command;
  }
  const Command& Sub(std::string_view name, std::string_view sub) {
    const Command* command = t.server().registry().FindSubcommand(Cmd(name), sub);
    REQUIRE(command != nullptr);
    return *command;
  }
  AclDenial Verdict(const AclUser& user, std::initializer_list<std::string_view> args) {
    std::vector<std::string_view> argv(args);
    const Command* command = &Cmd(argv[0]);
    if (command->has_subcommands()) command = &Sub(argv[0], argv[1]);
    return acl().Check(user, *command, argv).denial;
  }
};

TEST_CASE("SHA-256 matches the FIPS 180-4 test vectors", "[acl]") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(Sha256Hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 55, 56 and 64 bytes: the padding boundaries.
  CHECK(Sha256Hex(std::string(55, 'x')).size() == 64);
  CHECK(Sha256Hex(std::string(56, 'x')) != Sha256Hex(std::string(57, 'x')));
  CHECK(Sha256Hex("pw") == "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
}

TEST_CASE("the default user is on, nopass and may do everything", "[acl]") {
  AclFixture f;
  const AclUser& user = f.acl().default_user();
  CHECK(user.Unrestricted());
  CHECK(f.acl().Describe(user) == "on nopass sanitize-payload ~* &* +@all");
  CHECK(f.acl().Authenticate("default", "anything") == &user);
  CHECK(f.acl().Authenticate("nobody", "anything") == nullptr);
}

TEST_CASE("SETUSER rules build the description ACL LIST shows", "[acl]") {
  AclFixture f;
  REQUIRE(
      f.acl()
          .SetUser("alice", Rules({"on", ">pw", "~k*", "%R~r*", "+@read", "-get", "+set", "&ch"}))
          .ok());
  const AclUser* alice = f.acl().Find("alice");
  REQUIRE(alice != nullptr);
  CHECK(f.acl().Describe(*alice) ==
        "on sanitize-payload #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 "
        "~k* %R~r* resetchannels &ch -@all +@read -get +set");
  // Each command or category once; a whole-command rule drops its subcommand rules.
  REQUIRE(f.acl()
              .SetUser("bob", Rules({"+config|get", "+client", "-client|kill", "+get", "-get"}))
              .ok());
  CHECK(f.acl().DescribeCommandRules(*f.acl().Find("bob")) ==
        "-@all +config|get +client -client|kill -get");
  REQUIRE(f.acl().SetUser("bob", Rules({"-client"})).ok());
  CHECK(f.acl().DescribeCommandRules(*f.acl().Find("bob")) == "-@all +config|get -get -client");
  REQUIRE(f.acl().SetUser("bob", Rules({"allcommands", "-@dangerous"})).ok());
  CHECK(f.acl().DescribeCommandRules(*f.acl().Find("bob")) == "+@all -@dangerous");
  REQUIRE(f.acl().SetUser("bob", Rules({"reset"})).ok());
  CHECK(f.acl().Describe(*f.acl().Find("bob")) == "off sanitize-payload resetchannels -@all");
}

TEST_CASE("SETUSER errors are Valkey's and apply nothing", "[acl]") {
  AclFixture f;
  auto error = [&](std::initializer_list<std::string_view> rules) {
    Result<void> set = f.acl().SetUser("x", Rules(rules));
    return set.ok() ? std::string("OK") : set.error().message;
  };
  CHECK(error({"+bogus"}) ==
        "ERR Error in ACL SETUSER modifier '+bogus': Unknown command or category name in ACL");
  CHECK(error({"+@bogus"}) ==
        "ERR Error in ACL SETUSER modifier '+@bogus': Unknown command or category name in ACL");
  CHECK(error({"+config|bogus"}) ==
        "ERR Error in ACL SETUSER modifier '+config|bogus': Unknown command or category name in "
        "ACL");
  CHECK(error({"foo"}) == "ERR Error in ACL SETUSER modifier 'foo': Syntax error");
  CHECK(error({"%X~a"}) == "ERR Error in ACL SETUSER modifier '%X~a': Syntax error");
  CHECK(error({"%R"}) == "ERR Error in ACL SETUSER modifier '%R': Syntax error");
  CHECK(error({"~*", "~a"}) ==
        "ERR Error in ACL SETUSER modifier '~a': Adding a pattern after the * pattern (or the "
        "'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with "
        "an empty list of patterns");
  CHECK(error({"<nope"}) ==
        "ERR Error in ACL SETUSER modifier '<nope': The password you are trying to remove from "
        "the user does not exist");
  CHECK(error({"#abc"}) ==
        "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 "
        "characters and contain only lowercase hexadecimal characters");
  CHECK(f.acl().Find("x") == nullptr);  // no partial user was created
  CHECK(f.acl().SetUser("x y", {}).error().message ==
        "ERR Usernames can't contain spaces or null characters");
  REQUIRE(f.acl().SetUser("x", Rules({"on", ">a"})).ok());
  CHECK_FALSE(f.acl().SetUser("x", Rules({"<a", "bad"})).ok());
  CHECK(f.acl().Find("x")->passwords.size() == 1);  // all or nothing
}

TEST_CASE("permissions by command, category, subcommand and key", "[acl]") {
  AclFixture f;
  REQUIRE(
      f.acl().SetUser("reader", Rules({"on", "nopass", "~app:*", "+@read", "+@connection"})).ok());
  const AclUser& reader = *f.acl().Find("reader");
  CHECK(f.Verdict(reader, {"get", "app:1"}) == AclDenial::kNone);
  CHECK(f.Verdict(reader, {"get", "other"}) == AclDenial::kKey);
  CHECK(f.Verdict(reader, {"mget", "app:1", "other"}) == AclDenial::kKey);
  CHECK(f.Verdict(reader, {"set", "app:1", "v"}) == AclDenial::kCommand);
  CHECK(f.Verdict(reader, {"config", "get", "port"}) == AclDenial::kCommand);
  CHECK(f.Verdict(reader, {"client", "id"}) == AclDenial::kNone);
  CHECK(f.Verdict(reader, {"auth", "a", "b"}) == AclDenial::kNone);  // no-auth commands

  REQUIRE(f.acl().SetUser("split", Rules({"on", "+@all", "%R~r:*", "%W~w:*"})).ok());
  const AclUser& split = *f.acl().Find("split");
  CHECK(f.Verdict(split, {"get", "r:1"}) == AclDenial::kNone);
  CHECK(f.Verdict(split, {"get", "w:1"}) == AclDenial::kKey);
  CHECK(f.Verdict(split, {"set", "w:1", "v"}) == AclDenial::kNone);
  CHECK(f.Verdict(split, {"set", "r:1", "v"}) == AclDenial::kKey);
  CHECK(f.Verdict(split, {"zunionstore", "w:d", "2", "w:a", "w:b"}) == AclDenial::kNone);
  CHECK(f.Verdict(split, {"zunionstore", "w:d", "2", "w:a", "x"}) == AclDenial::kKey);

  REQUIRE(f.acl().SetUser("cfg", Rules({"on", "+config|get"})).ok());
  const AclUser& cfg = *f.acl().Find("cfg");
  CHECK(f.Verdict(cfg, {"config", "get", "port"}) == AclDenial::kNone);
  CHECK(f.Verdict(cfg, {"config", "set", "port", "1"}) == AclDenial::kCommand);
  CHECK(f.Verdict(cfg, {"dbsize"}) == AclDenial::kCommand);

  REQUIRE(f.acl().SetUser("admin", Rules({"on", "+@all", "-@dangerous", "allkeys"})).ok());
  const AclUser& admin = *f.acl().Find("admin");
  CHECK_FALSE(admin.Unrestricted());
  CHECK(f.Verdict(admin, {"flushall"}) == AclDenial::kCommand);
  CHECK(f.Verdict(admin, {"crdt.peer", "add", "h:1"}) == AclDenial::kCommand);
  CHECK(f.Verdict(admin, {"set", "anything", "v"}) == AclDenial::kNone);
}

TEST_CASE("every command has a category and ACL CAT lists it", "[acl]") {
  TestServer t;
  for (const Command* command : t.server().registry().AllWithSubcommands()) {
    CAPTURE(command->full_name);
    CHECK((command->spec.acl & (kAclFast | kAclSlow)) != 0);
  }
  const RespValue write = t.RunValue({"acl", "cat", "write"});
  CHECK(write.ToString().find("\"set\"") != std::string::npos);
  CHECK(write.ToString().find("\"get\"") == std::string::npos);
  CHECK(t.Run({"acl", "cat", "nope"}) == "(error) ERR Unknown category 'nope'");
  CHECK(t.RunValue({"acl", "cat"}).elements.size() == 21);
}

TEST_CASE("AUTH and HELLO AUTH log in ACL users; NOPERM texts are Valkey's", "[acl]") {
  TestServer t;
  CHECK(t.Run({"acl", "setuser", "ro", "on", ">ropw", "~*", "+@read", "+@connection"}) == "OK");
  CHECK(t.Run({"auth", "ro", "wrong"}) ==
        "(error) WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(t.Run({"auth", "ro", "ropw"}) == "OK");
  CHECK(t.Run({"acl", "whoami"}) ==
        "(error) NOPERM User ro has no permissions to run the 'acl|whoami' command");
  CHECK(t.Run({"set", "k", "v"}) ==
        "(error) NOPERM User ro has no permissions to run the 'set' command");
  CHECK(t.Run({"get", "k"}) == "(nil)");
  CHECK(t.Run({"client", "info"}).find("user=ro ") != std::string::npos);
  CHECK(t.Run({"hello", "2", "auth", "default", "x"}) ==
        "[\"server\", \"valkey\", \"version\", "
        "\"9.0.0\", \"proto\", 2, \"id\", 1, "
        "\"mode\", \"standalone\", \"role\", "
        "\"master\", \"modules\", []]");
  CHECK(t.Run({"acl", "whoami"}) == "\"default\"");
  CHECK(t.Run({"acl", "setuser", "keys", "on", "nopass", "+@all", "~allowed*"}) == "OK");
  CHECK(t.Run({"auth", "keys", "x"}) == "OK");
  CHECK(t.Run({"get", "secret"}) == "(error) NOPERM No permissions to access a key");
  CHECK(t.Run({"acl", "dryrun", "keys", "get", "secret"}) ==
        "\"User keys has no permissions to access the 'secret' key\"");
  CHECK(t.Run({"acl", "dryrun", "ro", "set", "k", "v"}) ==
        "\"User ro has no permissions to run the 'set' command\"");
  CHECK(t.Run({"acl", "dryrun", "ro", "get", "k"}) == "OK");
  CHECK(t.Run({"acl", "dryrun", "nobody", "get", "k"}) == "(error) ERR User 'nobody' not found");
  CHECK(t.Run({"acl", "dryrun", "ro", "nocmd"}) == "(error) ERR Command 'nocmd' not found");
}

TEST_CASE("a disabled user can't log in; requirepass is the default user's password", "[acl]") {
  Config config;
  const std::string_view args[] = {"--requirepass", "secret"};
  REQUIRE(config.ApplyArgs(args).ok());
  TestServer t(std::move(config));
  CHECK(t.Run({"ping"}) == "(error) NOAUTH Authentication required.");
  CHECK(t.Run({"auth", "nope"}) ==
        "(error) WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(t.Run({"auth", "secret"}) == "OK");
  CHECK(t.Run({"acl", "setuser", "off_user", "off", ">pw", "+@all"}) == "OK");
  CHECK(t.Run({"auth", "off_user", "pw"}) ==
        "(error) WRONGPASS invalid username-password pair or user is disabled.");
  CHECK(t.Run({"config", "set", "requirepass", ""}) == "OK");
  CHECK_FALSE(t.server().auth_required());
  CHECK(t.Run({"config", "set", "requirepass", "other"}) == "OK");
  CHECK(t.server().auth_required());
  CHECK(t.server().acl().Authenticate("default", "other") != nullptr);
}

TEST_CASE("MULTI checks permissions at queue time, and ACL LOG records refusals", "[acl]") {
  TestServer t;
  CHECK(t.Run({"acl", "setuser", "ro", "on", "nopass", "~*", "+@read", "+@transaction"}) == "OK");
  t.AddClient();
  CHECK(t.Run({"auth", "ro", "x"}, 1) == "OK");
  CHECK(t.Run({"multi"}, 1) == "OK");
  CHECK(t.Run({"get", "k"}, 1) == "QUEUED");
  CHECK(t.Run({"set", "k", "v"}, 1) ==
        "(error) NOPERM User ro has no permissions to run the 'set' command");
  CHECK(t.Run({"exec"}, 1) ==
        "(error) EXECABORT Transaction discarded because of previous errors.");
  CHECK(t.Run({"set", "k", "v"}, 1).starts_with("(error) NOPERM"));
  CHECK(t.Run({"auth", "ro", "x"}, 0) == "OK");
  CHECK(t.Run({"auth", "default", "x"}, 0) == "OK");
  CHECK(t.Run({"auth", "nobody", "x"}, 0).starts_with("(error) WRONGPASS"));
  const RespValue log = t.RunValue({"acl", "log"});
  REQUIRE(log.elements.size() == 3);
  const std::string newest = log.elements[0].ToString();
  CHECK(newest.find("\"reason\", \"auth\"") != std::string::npos);
  CHECK(newest.find("\"username\", \"nobody\"") != std::string::npos);
  const std::string toplevel = log.elements[1].ToString();
  CHECK(toplevel.find("\"context\", \"toplevel\"") != std::string::npos);
  const std::string multi = log.elements[2].ToString();
  CHECK(multi.find("\"reason\", \"command\"") != std::string::npos);
  CHECK(multi.find("\"context\", \"multi\"") != std::string::npos);
  CHECK(multi.find("\"object\", \"set\"") != std::string::npos);
  CHECK(t.Run({"acl", "log", "reset"}) == "OK");
  CHECK(t.RunValue({"acl", "log"}).elements.empty());
}

TEST_CASE("DELUSER disconnects the user's clients; default can't be deleted", "[acl]") {
  TestServer t;
  CHECK(t.Run({"acl", "setuser", "tmp", "on", "nopass", "+@all", "~*"}) == "OK");
  t.AddClient();
  CHECK(t.Run({"auth", "tmp", "x"}, 1) == "OK");
  CHECK(t.Run({"acl", "deluser", "default"}) == "(error) ERR The 'default' user cannot be removed");
  CHECK(t.Run({"acl", "deluser", "tmp", "nobody"}) == "1");
  CHECK(t.client(1).killed);
  CHECK_FALSE(t.client(1).authenticated);
  CHECK(t.client(1).acl_user == nullptr);
  CHECK(t.Run({"acl", "users"}) == "[\"default\"]");
}

TEST_CASE("the ACL file round-trips and a bad file changes nothing", "[acl]") {
  AclFixture f;
  REQUIRE(f.acl().SetUser("app", Rules({"on", ">pw", "~app:*", "+@read", "+@write", "-del"})).ok());
  const std::string saved = f.acl().Save();
  CHECK(saved ==
        "user app on sanitize-payload "
        "#30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~app:* resetchannels "
        "-@all +@read +@write -del\n"
        "user default on nopass sanitize-payload ~* &* +@all\n");
  const AclUser* app = f.acl().Find("app");
  std::vector<std::string> removed;
  auto on_remove = [&](const AclUser& user) { removed.push_back(user.name); };
  REQUIRE(f.acl().Load(saved + "user extra on nopass +@all\n", "users.acl", on_remove).ok());
  CHECK(f.acl().Find("app") == app);  // updated in place: clients keep pointing at it
  CHECK(f.acl().Save().find("\nuser extra on nopass sanitize-payload resetchannels +@all\n") !=
        std::string::npos);
  REQUIRE(f.acl().Load("user default on nopass ~* +@all\n", "users.acl", on_remove).ok());
  CHECK(removed == std::vector<std::string>{"app", "extra"});
  Result<void> bad = f.acl().Load("user a on +nope\nfoo\nuser a\n", "users.acl", on_remove);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message ==
        "ERR users.acl:1: Error in applying operation '+nope': Unknown command or category name "
        "in ACL. users.acl:2 should start with user keyword followed by the username. WARNING: "
        "Duplicate user 'a' found on line 3. WARNING: ACL errors detected, no change to the "
        "previously active ACL rules was performed");
  CHECK(f.acl().Users().size() == 1);
}

TEST_CASE("config user lines; the default user's line starts from reset", "[acl]") {
  AclFixture f;
  REQUIRE(f.acl()
              .LoadConfigUsers(
                  {{"default", "on", ">pw", "~*", "+@all"}, {"ops", "on", "nopass", "+@admin"}})
              .ok());
  CHECK_FALSE(f.acl().default_user().nopass);
  CHECK(f.acl().Find("ops") != nullptr);
  CHECK(f.acl().LoadConfigUsers({{"x", "bad"}}).error().message ==
        "Error loading ACL rule 'bad' for the user named 'x': Syntax error");
  CHECK(f.acl().LoadConfigUsers({{"y"}, {"y"}}).error().message ==
        "Error loading ACL user 'y': Duplicate user found. A user can only be defined once in "
        "config files");
}

TEST_CASE("protected mode and protected actions", "[acl]") {
  AclFixture f;
  const AclUser& user = f.acl().default_user();
  CHECK(DeniedByProtectedMode(true, user, /*client_is_local=*/false));
  CHECK_FALSE(DeniedByProtectedMode(true, user, true));
  CHECK_FALSE(DeniedByProtectedMode(false, user, false));
  f.acl().SetDefaultPassword("pw");
  CHECK_FALSE(DeniedByProtectedMode(true, f.acl().default_user(), false));
  CHECK(IsLoopbackAddress("127.0.0.1"));
  CHECK(IsLoopbackAddress("127.8.9.10"));
  CHECK(IsLoopbackAddress("::1"));
  CHECK(IsLoopbackAddress("::ffff:127.0.0.1"));
  CHECK_FALSE(IsLoopbackAddress("10.0.0.1"));
  CHECK_FALSE(IsLoopbackAddress("::ffff:10.0.0.1"));
  CHECK_FALSE(IsLoopbackAddress("fe80::1"));
  CHECK(ProtectedActionAllowed("yes", false));
  CHECK(ProtectedActionAllowed("local", true));
  CHECK_FALSE(ProtectedActionAllowed("local", false));
  CHECK_FALSE(ProtectedActionAllowed("no", true));
}

TEST_CASE("CRDT.PEER ADD/REMOVE and protected configs need enable-protected-configs", "[acl]") {
  TestServer t;
  const std::string refused =
      "(error) ERR CRDT.PEER ADD command not allowed. If the enable-protected-configs option is "
      "set to \"local\", you can run it from a local connection, otherwise you need to set this "
      "option in the configuration file, and then restart the server.";
  CHECK(t.Run({"crdt.peer", "add", "127.0.0.1:1"}) == refused);
  CHECK(t.Run({"crdt.peer", "remove", "127.0.0.1:1"})
            .starts_with("(error) ERR CRDT.PEER REMOVE command not allowed."));
  CHECK(t.Run({"config", "set", "dbfilename", "x.rdb"}) ==
        "(error) ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set "
        "protected config");
  Config config;
  const std::string_view args[] = {"--enable-protected-configs", "local"};
  REQUIRE(config.ApplyArgs(args).ok());
  TestServer local(std::move(config));
  CHECK(local.Run({"config", "set", "dbfilename", "x.rdb"}) == "OK");
  // Without replication running the command gets past the protection to its own error.
  CHECK(local.Run({"crdt.peer", "add", "127.0.0.1:1"}) != refused);
  local.client().is_local = false;
  CHECK(local.Run({"crdt.peer", "add", "127.0.0.1:1"}) == refused);
  CHECK(
      local.Run({"config", "set", "dbfilename", "y.rdb"}).ends_with("can't set protected config"));
}

}  // namespace
}  // namespace lattice::server
