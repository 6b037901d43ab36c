// What every backend shares: the holder's description, and the choice of backend per lock.
#include "lock/lock.hpp"

#include <algorithm>

namespace loto {

namespace {

// Sends each lock to the backend of its kind. The etcd backend is made on first use, so
// a run of local locks never starts anything for the fleet.
class LockRouter final : public LockBackend {
public:
  explicit LockRouter(const Plan& plan)
      : m_flock(make_flock_backend()), m_etcd_plan(plan.etcd), m_command(plan.command) {}

  AcquireResult acquire(const LockTarget& target, WaitControl& wait) override {
    return backend_for(target).acquire(target, wait);
  }

  std::optional<LockHolder> find_holder(const LockTarget& target) const override {
    return backend_for(target).find_holder(target);
  }

  LockState inspect(const LockTarget& target) const override {
    return backend_for(target).inspect(target);
  }

private:
  LockBackend& backend_for(const LockTarget& target) const {
    if (target.kind == LockKind::flock) {
      return *m_flock;
    }
    if (!m_etcd) {
      m_etcd = make_etcd_backend(m_etcd_plan, m_command);
    }
    return *m_etcd;
  }

  std::unique_ptr<LockBackend> m_flock;
  mutable std::unique_ptr<LockBackend> m_etcd;
  EtcdPlan m_etcd_plan;
  std::vector<std::string> m_command;
};

} // namespace

std::string describe_holder(const LockHolder& holder) {
  std::string text;
  if (!holder.description.empty()) {
    text = holder.description;
  } else if (holder.command.empty()) {
    text = "pid " + std::to_string(holder.pid) + " (exited; a process it started holds the lock)";
  } else {
    text = "pid " + std::to_string(holder.pid) + ": " + holder.command;
  }
  if (holder.waiting > 0) {
    text += ", " + std::to_string(holder.waiting) + " waiting";
  }
  return text;
}

LockState LockBackend::inspect(const LockTarget& target) const {
  LockState state;
  state.waiters_listed = false;
  if (const auto holder = find_holder(target)) {
    LockParty party;
    party.pid = holder->pid;
    party.command = holder->command;
    party.description = holder->description;
    state.holders.push_back(std::move(party));
    state.waiting = holder->waiting;
  }
  return state;
}

std::string describe_party(const LockParty& party) {
  const std::string slot = party.slot >= 0 ? "slot " + std::to_string(party.slot) + ": " : "";
  if (!party.description.empty()) {
    return slot + party.description;
  }
  if (party.pid <= 0) {
    return slot + "a process out of sight (another PID namespace?)";
  }
  if (party.command.empty()) {
    return slot + "pid " + std::to_string(party.pid) +
           " (exited; a process it started holds the lock)";
  }
  return slot + "pid " + std::to_string(party.pid) + ": " + party.command;
}

std::string describe_state(const LockState& state) {
  if (state.holders.empty()) {
    return "free";
  }
  std::string text = "held by ";
  if (std::any_of(state.holders.begin(), state.holders.end(), [](const LockParty& holder) {
        return holder.mode == "shared";
      })) {
    text = "held (shared) by ";
  }
  for (std::size_t i = 0; i < state.holders.size(); ++i) {
    text += (i == 0 ? "" : "; ") + describe_party(state.holders[i]);
  }
  const std::size_t waiting =
      state.waiters_listed ? state.waiters.size() : static_cast<std::size_t>(state.waiting);
  if (waiting > 0) {
    text += ", " + std::to_string(waiting) + " waiting";
  }
  return text;
}

std::unique_ptr<LockBackend> make_lock_backend(const Plan& plan) {
  return std::make_unique<LockRouter>(plan);
}

} // namespace loto
