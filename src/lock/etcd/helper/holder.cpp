#include "lock/etcd/helper/holder.hpp"

#include "lock/etcd/helper/codec.hpp"

#include <nlohmann/json.hpp>

namespace loto::etcd_helper {

namespace {

using nlohmann::json;

// A field of the record as text: strings as they are, numbers written out, anything
// else (absent, null, objects) as "".
std::string field_text(const json& record, const char* name) {
  const auto found = record.find(name);
  if (found == record.end()) {
    return {};
  }
  if (found->is_string()) {
    return found->get<std::string>();
  }
  if (found->is_number_integer()) {
    return found->dump();
  }
  return {};
}

// Appends `part` to `text`, after `separator` unless `text` is still empty.
void append_part(std::string& text, std::string_view separator, const std::string& part) {
  if (!text.empty()) {
    text += separator;
  }
  text += part;
}

} // namespace

std::string holder_record_json(const HolderRecord& record, std::time_t now) {
  json out = json::object();
  if (!record.host.empty()) {
    out["host"] = record.host;
  }
  if (record.pid) {
    out["pid"] = *record.pid;
  }
  if (!record.user.empty()) {
    out["user"] = record.user;
  }
  if (!record.command.empty()) {
    out["command"] = record.command;
  }
  out["since"] = iso8601_utc(now);
  // A command line is not always UTF-8; the default handler would throw on it.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

HolderFields holder_fields(std::string_view value) {
  const json record = json::parse(value, nullptr, false);
  if (record.is_discarded() || !record.is_object()) {
    return {};
  }
  return {field_text(record, "host"),
          field_text(record, "pid"),
          field_text(record, "user"),
          field_text(record, "since"),
          field_text(record, "command")};
}

std::string describe_holder(std::string_view value) {
  const json record = json::parse(value, nullptr, false);
  if (record.is_discarded() || !record.is_object()) {
    return std::string(k_unknown_holder);
  }
  const std::string pid = field_text(record, "pid");
  const std::string host = field_text(record, "host");
  const std::string user = field_text(record, "user");
  const std::string since = field_text(record, "since");
  const std::string command = field_text(record, "command");

  std::string text;
  if (!pid.empty()) {
    text = "pid " + pid;
  }
  if (!host.empty()) {
    append_part(text, " ", "on " + host);
  }
  if (!user.empty()) {
    append_part(text, " ", "(" + user + ")");
  }
  if (!since.empty()) {
    append_part(text, " ", "since " + since);
  }
  if (!command.empty()) {
    append_part(text, ": ", command);
  }
  return text.empty() ? std::string(k_unknown_holder) : one_line(text);
}

} // namespace loto::etcd_helper
