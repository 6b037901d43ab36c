// What every backend shares: the holder's description, and the choice of backend per lock.
#include "lock/lock.hpp"

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

std::unique_ptr<LockBackend> make_lock_backend(const Plan& plan) {
  return std::make_unique<LockRouter>(plan);
}

} // namespace loto
