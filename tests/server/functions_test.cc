// FUNCTION / FCALL through the real Server: Valkey's load errors and replies, flags, DUMP/RESTORE
// (Valkey's payload, LZF included), libraries replicated through the system db (two regions,
// concurrent loads of one library), the cmsgpack and struct libraries, INFO's fields.

#include <string>

#include "server/scripting/function_payload.h"
#include "server/scripting/script_engine.h"
#include "server_test_util.h"

namespace lattice::server::testing {
namespace {

const std::string kLib1 =
    "#!lua name=lib1\n"
    "redis.register_function('echo', function(keys, args) return {keys[1], args[1]} end)\n"
    "redis.register_function{function_name='getter', callback=function(keys) return "
    "redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n"
    "redis.register_function('setter', function(keys, args) return redis.call('set', keys[1], "
    "args[1]) end)\n"
    "redis.register_function('fail', function() local x = nil; return x.y end)\n";

std::string Load(TestServer& t, const std::string& code, bool replace = false) {
  if (replace) return t.Run({"FUNCTION", "LOAD", "REPLACE", code});
  return t.Run({"FUNCTION", "LOAD", code});
}

TEST_CASE("FUNCTION LOAD refuses bad libraries with Valkey's texts") {
  TestServer t;
  CHECK(Load(t, "return 1") == "(error) ERR Missing library metadata");
  CHECK(Load(t, "#!lua") == "(error) ERR Invalid library metadata");
  CHECK(Load(t, "#!lua\n") == "(error) ERR Library name was not given");
  CHECK(Load(t, "#!lua name=a foo=bar\n") == "(error) ERR Invalid metadata value given: foo=bar");
  CHECK(Load(t, "#!lua name=a name=b\n") ==
        "(error) ERR Invalid metadata value, name argument was given multiple times");
  CHECK(Load(t, "#!luax name=a\n") == "(error) ERR Engine 'luax' not found");
  CHECK(Load(t, "#!lua name=a-b\n") ==
        "(error) ERR Library names can only contain letters, numbers, or underscores(_) and "
        "must be at least one character long");
  CHECK(Load(t, "#!lua name=a\nreturn 1") == "(error) ERR No functions registered");
  CHECK(Load(t, "#!lua name=a\nif") ==
        "(error) ERR Error compiling function: user_function:2: unexpected symbol near '<eof>'");
  CHECK(Load(t, "#!lua name=a\nredis.call('ping')") ==
        "(error) ERR Error registering functions: ERR user_function:2: Script attempted to "
        "access nonexistent global variable 'call'");
  CHECK(Load(t, "#!lua name=a\nlocal x = string.len('a')") ==
        "(error) ERR Error registering functions: ERR user_function:2: Script attempted to "
        "access nonexistent global variable 'string'");
  CHECK(Load(t, "#!lua name=a\nx = 1") ==
        "(error) ERR Error registering functions: ERR user_function:2: Attempt to modify a "
        "readonly table");
  CHECK(Load(t, "#!lua name=a\nredis.register_function('f')") ==
        "(error) ERR Error registering functions: ERR calling redis.register_function with a "
        "single argument is only applicable to Lua table (representing named arguments).");
  CHECK(Load(t, "#!lua name=a\nredis.register_function('f-g', function() end)") ==
        "(error) ERR Error registering functions: ERR Function names can only contain letters, "
        "numbers, or underscores(_) and must be at least one character long");
  CHECK(Load(t,
             "#!lua name=a\nredis.register_function{function_name='f', callback=function() "
             "end, flags={'bad'}}") ==
        "(error) ERR Error registering functions: ERR unknown flag given");
  CHECK(Load(t, "#!lua name=a\nredis.register_function{function_name='f'}") ==
        "(error) ERR Error registering functions: ERR redis.register_function must get a "
        "callback argument");
  CHECK(Load(t,
             "#!lua name=a\nredis.register_function('f', function() end) "
             "redis.register_function('f', function() end)") ==
        "(error) ERR Error registering functions: ERR Function already exists in the library");
  CHECK(t.Run({"FUNCTION", "LOAD", "REPLACEX", "x"}) ==
        "(error) ERR Unknown option given: REPLACEX");
  // Nothing of the failed loads stays.
  CHECK(t.Run({"FUNCTION", "LIST"}) == "[]");
}

TEST_CASE("FCALL runs functions with keys and args, flags and Valkey's errors") {
  TestServer t;
  CHECK(Load(t, kLib1) == "\"lib1\"");
  CHECK(Load(t, kLib1) == "(error) ERR Library 'lib1' already exists");
  CHECK(Load(t, "#!lua name=lib2\nredis.register_function('ECHO', function() end)") ==
        "(error) ERR Function ECHO already exists");
  CHECK(t.Run({"FCALL", "echo", "1", "k", "a"}) == "[\"k\", \"a\"]");
  CHECK(t.Run({"FCALL", "ECHO", "1", "k"}) == "[\"k\"]");  // names are case-insensitive
  CHECK(t.Run({"FCALL", "nosuch", "0"}) == "(error) ERR Function not found");
  CHECK(t.Run({"FCALL", "echo", "x"}) == "(error) ERR Bad number of keys provided");
  CHECK(t.Run({"FCALL", "echo", "5", "a"}) ==
        "(error) ERR Number of keys can't be greater than number of args");
  CHECK(t.Run({"FCALL", "echo", "-1"}) == "(error) ERR Number of keys can't be negative");
  CHECK(t.Run({"FCALL", "setter", "1", "k", "v"}) == "OK");
  CHECK(t.Run({"FCALL_RO", "getter", "1", "k"}) == "\"v\"");
  CHECK(t.Run({"FCALL_RO", "setter", "1", "k", "v"}) ==
        "(error) ERR Can not execute a script with write flag using *_ro command.");
  CHECK(t.Run({"FCALL", "fail", "0"}) ==
        "(error) ERR user_function:5: attempt to index local 'x' (a nil value) script: fail, on "
        "@user_function:5.");
  // LOAD REPLACE swaps the library's functions.
  CHECK(Load(t, "#!lua name=lib1\nredis.register_function('other', function() return 7 end)",
             true) == "\"lib1\"");
  CHECK(t.Run({"FCALL", "echo", "0"}) == "(error) ERR Function not found");
  CHECK(t.Run({"FCALL", "other", "0"}) == "7");
  // EVAL cannot call functions; SCRIPT FLUSH does not touch them.
  CHECK(t.Run({"SCRIPT", "FLUSH"}) == "OK");
  CHECK(t.Run({"FCALL", "other", "0"}) == "7");
  CHECK(t.Run({"EVAL", "return redis.call('fcall', 'other', '0')", "0"})
            .starts_with("(error) ERR This Redis command is not allowed from script"));
}

TEST_CASE("FUNCTION LIST, DELETE, FLUSH, STATS and HELP") {
  TestServer t;
  REQUIRE(Load(t, kLib1) == "\"lib1\"");
  REQUIRE(Load(t, "#!lua name=other\nredis.register_function('x', function() end)") == "\"other\"");
  const std::string list = t.Run({"FUNCTION", "LIST", "LIBRARYNAME", "LIB*"});
  CHECK(
      list.starts_with("[[\"library_name\", \"lib1\", \"engine\", \"LUA\", \"functions\", "
                       "[[\"name\", \"echo\", \"description\", (nil), \"flags\", []], "
                       "[\"name\", \"getter\", \"description\", \"reads\", \"flags\", "
                       "[no-writes]]"));
  CHECK(list.find("other") == std::string::npos);
  CHECK(t.Run({"FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "other"}).find("library_code") !=
        std::string::npos);
  CHECK(t.Run({"FUNCTION", "LIST", "LIBRARYNAME"}) ==
        "(error) ERR library name argument was not given");
  CHECK(t.Run({"FUNCTION", "LIST", "WITHCODE", "WITHCODE"}) ==
        "(error) ERR Unknown argument WITHCODE");
  CHECK(t.Run({"FUNCTION", "STATS"}) ==
        "[\"running_script\", (nil), \"engines\", [\"LUA\", [\"libraries_count\", 2, "
        "\"functions_count\", 5]]]");
  CHECK(t.Run({"FUNCTION", "DELETE", "nosuch"}) == "(error) ERR Library not found");
  CHECK(t.Run({"FUNCTION", "DELETE", "other"}) == "OK");
  CHECK(t.Run({"FCALL", "x", "0"}) == "(error) ERR Function not found");
  CHECK(t.Run({"FUNCTION", "FLUSH", "bad"}) ==
        "(error) ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
  CHECK(t.Run({"FUNCTION", "FLUSH", "SYNC"}) == "OK");
  CHECK(t.Run({"FUNCTION", "LIST"}) == "[]");
  CHECK(t.Run({"FUNCTION", "KILL"}) == "(error) NOTBUSY No scripts in execution right now.");
  const std::string help = t.Run({"FUNCTION", "HELP"});
  CHECK(help.find("FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:") !=
        std::string::npos);
  CHECK(help.find("RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]") != std::string::npos);
}

TEST_CASE("FUNCTION DUMP and RESTORE use Valkey's payload") {
  CHECK(Crc64(0, "123456789") == 0xe9c6d914c4b8d9caULL);
  TestServer t;
  REQUIRE(Load(t, kLib1) == "\"lib1\"");
  const std::string dump = t.RunValue({"FUNCTION", "DUMP"}).text;
  CHECK(static_cast<uint8_t>(dump[0]) == 245);
  CHECK(dump.size() == 1 + 2 + kLib1.size() + 10);  // opcode, 14-bit length, code, footer
  CHECK(t.Run({"FUNCTION", "RESTORE", dump}) == "(error) ERR Library lib1 already exists");
  CHECK(t.Run({"FUNCTION", "RESTORE", dump, "BAD"}) ==
        "(error) ERR Wrong restore policy given, value should be either FLUSH, APPEND or "
        "REPLACE.");
  std::string corrupt = dump;
  corrupt[5] ^= 1;
  CHECK(t.Run({"FUNCTION", "RESTORE", corrupt}) ==
        "(error) ERR DUMP payload version or checksum are wrong");
  CHECK(t.Run({"FUNCTION", "RESTORE", "short"}) ==
        "(error) ERR DUMP payload version or checksum are wrong");
  CHECK(t.Run({"FUNCTION", "FLUSH"}) == "OK");
  CHECK(t.Run({"FUNCTION", "RESTORE", dump}) == "OK");
  CHECK(t.Run({"FCALL", "echo", "1", "k", "a"}) == "[\"k\", \"a\"]");
  CHECK(t.Run({"FUNCTION", "RESTORE", dump, "REPLACE"}) == "OK");
  REQUIRE(Load(t, "#!lua name=extra\nredis.register_function('x', function() end)") == "\"extra\"");
  CHECK(t.Run({"FUNCTION", "RESTORE", dump, "FLUSH"}) == "OK");
  CHECK(t.Run({"FCALL", "x", "0"}) == "(error) ERR Function not found");
  // A payload Redis 7.0 wrote: its library LZF-compressed, RDB version 10.
  const std::string code =
      "#!lua name=z\nredis.register_function('zz', function() return 'aaaaaaaaaaaaaaaaaaaaaaaa' "
      "end)";
  std::string lzf;
  lzf.push_back(static_cast<char>(code.size() - 1 > 31 ? 31 : code.size() - 1));
  lzf.append(code.substr(0, 32));
  // The rest as literals of at most 32 bytes, then one back reference (distance 1, length 5).
  for (size_t at = 32; at < code.size(); at += 32) {
    const std::string piece = code.substr(at, 32);
    lzf.push_back(static_cast<char>(piece.size() - 1));
    lzf.append(piece);
  }
  std::string decoded;
  CHECK(LzfDecompress(lzf, code.size(), &decoded));
  CHECK(decoded == code);
  std::string with_ref = std::string(
                             "\x02"
                             "abc") +
                         static_cast<char>(0x60) + '\x02';  // "abc" + 5 from 3 back
  CHECK(LzfDecompress(with_ref, 8, &decoded));
  CHECK(decoded == "abcabcab");
  CHECK_FALSE(LzfDecompress(std::string("\x40\x05", 2), 3, &decoded));  // reference before start
  std::string payload;
  payload.push_back(static_cast<char>(245));
  payload.push_back(static_cast<char>(0xC3));
  payload.push_back(static_cast<char>(with_ref.size()));
  payload.push_back(static_cast<char>(8));
  payload.append(with_ref);
  payload.append("\x0a\x00", 2);
  const uint64_t crc = Crc64(0, payload);
  for (int i = 0; i < 8; ++i) payload.push_back(static_cast<char>(crc >> (8 * i)));
  Result<std::vector<std::string>> codes = DecodeFunctionPayload(payload, false);
  REQUIRE(codes.ok());
  CHECK(codes->at(0) == "abcabcab");
  CHECK(t.Run({"FUNCTION", "RESTORE", payload}) == "(error) ERR Missing library metadata");
}

TEST_CASE("Libraries replicate through the system db and converge") {
  Region a(1);
  Region b(2);
  REQUIRE(Load(a, kLib1) == "\"lib1\"");
  a.sink.DeliverTo(b.keyspace());
  CHECK(b.Run({"FCALL", "echo", "1", "k", "from-a"}) == "[\"k\", \"from-a\"]");
  CHECK(b.Run({"FUNCTION", "LIST", "WITHCODE"}) == a.Run({"FUNCTION", "LIST", "WITHCODE"}));
  // Concurrent loads of one library: last writer wins in both regions.
  a.clock().now_us += 1000;
  b.clock().now_us += 2000;
  REQUIRE(Load(a, "#!lua name=lib1\nredis.register_function('v', function() return 'a' end)",
               true) == "\"lib1\"");
  REQUIRE(Load(b, "#!lua name=lib1\nredis.register_function('v', function() return 'b' end)",
               true) == "\"lib1\"");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"FCALL", "v", "0"}) == "\"b\"");
  CHECK(b.Run({"FCALL", "v", "0"}) == "\"b\"");
  // Two libraries registering one function concurrently: both are stored, the one whose name
  // sorts first is loaded in every region.
  REQUIRE(Load(a, "#!lua name=zeta\nredis.register_function('same', function() return 'z' end)") ==
          "\"zeta\"");
  REQUIRE(Load(b, "#!lua name=alpha\nredis.register_function('same', function() return 'a' end)") ==
          "\"alpha\"");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"FCALL", "same", "0"}) == "\"a\"");
  CHECK(b.Run({"FCALL", "same", "0"}) == "\"a\"");
  CHECK(a.Run({"FUNCTION", "LIST"}) == b.Run({"FUNCTION", "LIST"}));
  // A skipped library is listed nowhere but can be deleted; deleting the loaded one lets the
  // other load, everywhere.
  CHECK(a.Run({"FUNCTION", "LIST", "LIBRARYNAME", "zeta"}) == "[]");
  CHECK(a.Run({"FUNCTION", "DELETE", "alpha"}) == "OK");
  a.sink.DeliverTo(b.keyspace());
  CHECK(a.Run({"FCALL", "same", "0"}) == "\"z\"");
  CHECK(b.Run({"FCALL", "same", "0"}) == "\"z\"");
  // FLUSH is an observed remove: a library loaded concurrently elsewhere survives it.
  REQUIRE(Load(b, "#!lua name=late\nredis.register_function('late', function() return 1 end)") ==
          "\"late\"");
  CHECK(a.Run({"FUNCTION", "FLUSH"}) == "OK");
  a.sink.DeliverTo(b.keyspace());
  b.sink.DeliverTo(a.keyspace());
  CHECK(a.Run({"FCALL", "late", "0"}) == "1");
  CHECK(b.Run({"FCALL", "late", "0"}) == "1");
  CHECK(b.Run({"FCALL", "same", "0"}) == "(error) ERR Function not found");
}

TEST_CASE("cmsgpack and struct round-trip and refuse malformed input") {
  TestServer t;
  auto eval = [&](const std::string& script) { return t.Run({"EVAL", script, "0"}); };
  CHECK(eval("return {string.byte(cmsgpack.pack(1, -1, 300, 'ab', true, nil), 1, -1)}") ==
        "[1, 255, 205, 1, 44, 162, 97, 98, 195, 192]");
  CHECK(eval("local a, b, c = cmsgpack.unpack(cmsgpack.pack({x=1, y={1,2}}, 'q', -7)) return "
             "{a.x, a.y[2], b, c}") == "[1, 2, \"q\", -7]");
  CHECK(eval("return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}") == "[1, 1]");
  CHECK(eval("return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}") == "[-1, 2, 3]");
  CHECK(eval("return cmsgpack.unpack('\\145')").find("Missing bytes in input.") !=
        std::string::npos);
  CHECK(eval("return cmsgpack.unpack('\\193')").find("Bad data format in input.") !=
        std::string::npos);
  CHECK(eval("return cmsgpack.unpack('\\221\\255\\255\\255\\255')").find("Missing bytes") !=
        std::string::npos);
  CHECK(eval("return cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1')").find("Too deep") !=
        std::string::npos);
  CHECK(eval("local t = {} t[1] = t return #cmsgpack.pack(t)") == "17");  // 16 levels, then nil
  CHECK(eval("return {struct.unpack('>i4<h', struct.pack('>i4<h', 7, -2))}") == "[7, -2, 7]");
  CHECK(eval("return {struct.unpack('Bc0', '\\3abcdef')}") == "[\"abc\", 5]");
  CHECK(eval("return struct.size('bhi!8d')") == "16");
  CHECK(eval("return {struct.unpack('i', 'ab')}").find("data string too short") !=
        std::string::npos);
  CHECK(eval("return {struct.unpack('s', 'ab')}").find("unfinished string in data") !=
        std::string::npos);
  CHECK(eval("return struct.pack('i33', 1)").find("integral size 33 is larger than limit of 32") !=
        std::string::npos);
  CHECK(eval("return {struct.unpack('c999999999999', 'ab')}").find("size too large") !=
        std::string::npos);
  CHECK(eval("cmsgpack.pack = nil").find("Attempt to modify a readonly table") !=
        std::string::npos);
}

TEST_CASE("INFO memory shows the scripting fields") {
  TestServer t;
  REQUIRE(Load(t, kLib1) == "\"lib1\"");
  t.Run({"EVAL", "return 1", "0"});
  const std::string info = t.RunValue({"INFO", "memory"}).text;
  CHECK(info.find("number_of_functions:4\r\n") != std::string::npos);
  CHECK(info.find("number_of_libraries:1\r\n") != std::string::npos);
  CHECK(info.find("number_of_cached_scripts:1\r\n") != std::string::npos);
  CHECK(info.find("used_memory_vm_functions:") != std::string::npos);
  CHECK(info.find("used_memory_lua:") != std::string::npos);
}

}  // namespace
}  // namespace lattice::server::testing
