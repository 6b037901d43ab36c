// The informational actions: --check-config, --show-config, --list (--json).
#pragma once

#include "lock/lock.hpp"
#include "plan.hpp"

#include <ostream>

namespace loto {

void print_check(const Plan& plan, std::ostream& out);
// --check-config --online: one line per etcd resource, whether its cluster answers with
// these settings. Returns the exit status: 0, or the worst code of a failing resource
// (78 unusable files, 77 refused, 69 unreachable).
int print_online_check(const Plan& plan, std::ostream& out);
// "(ORIGIN) KEY = VALUE", one line per effective setting.
void print_settings(const Plan& plan, std::ostream& out);
// One row per resource: name, lock path, policy, description, and who holds it.
void print_resources(const Plan& plan, const LockBackend& backend, std::ostream& out);
// The same as one JSON document, {"resources": [...]}, with every holder and waiter.
void print_resources_json(const Plan& plan, const LockBackend& backend, std::ostream& out);
// A duration in seconds as a JSON number: "0", "1.5", "0.25".
std::string json_seconds(Duration duration);

} // namespace loto
