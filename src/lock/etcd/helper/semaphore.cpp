#include "lock/etcd/helper/semaphore.hpp"

#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/holder.hpp"

#include <algorithm>

namespace loto::etcd_helper {

std::string slot_prefix(std::string_view prefix) {
  return std::string(prefix) + "slot/";
}

std::string slot_key(std::string_view prefix, int slot) {
  return slot_prefix(prefix) + std::to_string(slot);
}

bool is_slot_key(std::string_view prefix, std::string_view key) {
  return key.starts_with(slot_prefix(prefix));
}

std::optional<int> slot_of(std::string_view prefix, std::string_view key, int slots) {
  const std::string slot_keys = slot_prefix(prefix);
  if (!key.starts_with(slot_keys)) {
    return std::nullopt;
  }
  const std::string_view number = key.substr(slot_keys.size());
  const auto value = parse_int64(number);
  if (!value || *value < 0 || *value >= slots || std::to_string(*value) != number) {
    return std::nullopt;
  }
  return static_cast<int>(*value);
}

std::vector<KeyValue> queue_keys(const std::vector<KeyValue>& kvs, std::string_view prefix) {
  std::vector<KeyValue> queue;
  std::copy_if(kvs.begin(), kvs.end(), std::back_inserter(queue), [prefix](const KeyValue& kv) {
    return !is_slot_key(prefix, kv.key);
  });
  return queue;
}

std::optional<std::size_t>
keys_ahead(const std::vector<KeyValue>& queue, std::int64_t my_revision, std::int64_t lease) {
  const auto mine = std::find_if(queue.begin(), queue.end(), [&](const KeyValue& kv) {
    return kv.create_revision == my_revision && kv.lease == lease;
  });
  if (mine == queue.end()) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(
      std::count_if(queue.begin(), queue.end(), [my_revision](const KeyValue& kv) {
        return kv.create_revision < my_revision;
      }));
}

std::optional<int>
lowest_free_slot(const std::vector<KeyValue>& taken, std::string_view prefix, int slots) {
  std::vector<bool> used(static_cast<std::size_t>(std::max(slots, 0)), false);
  for (const KeyValue& kv : taken) {
    if (const auto slot = slot_of(prefix, kv.key, slots)) {
      used[static_cast<std::size_t>(*slot)] = true;
    }
  }
  const auto free = std::find(used.begin(), used.end(), false);
  if (free == used.end()) {
    return std::nullopt;
  }
  return static_cast<int>(free - used.begin());
}

std::size_t holder_count(const std::vector<KeyValue>& kvs, std::string_view prefix, int slots) {
  if (slots == 1) {
    return kvs.empty() ? 0 : 1;
  }
  return std::min(queue_keys(kvs, prefix).size(), static_cast<std::size_t>(slots));
}

std::optional<int> slot_held_by(const std::vector<KeyValue>& kvs,
                                std::string_view prefix,
                                int slots,
                                std::string_view queue_key) {
  for (const KeyValue& kv : kvs) {
    const auto number = slot_of(prefix, kv.key, slots);
    if (number && kv.value == queue_key) {
      return number;
    }
  }
  return std::nullopt;
}

std::string describe_holders(const std::vector<KeyValue>& kvs, std::string_view prefix, int slots) {
  if (slots == 1) {
    return kvs.empty() ? "" : describe_holder(kvs.front().value);
  }
  const std::vector<KeyValue> queue = queue_keys(kvs, prefix);
  const std::size_t holders = holder_count(kvs, prefix, slots);
  std::string text;
  for (std::size_t i = 0; i < holders; ++i) {
    const auto slot = slot_held_by(kvs, prefix, slots, queue[i].key);
    text += (text.empty() ? "" : "; ") + std::string("slot ") +
            (slot ? std::to_string(*slot) : std::string("?")) + ": " +
            describe_holder(queue[i].value);
  }
  return text;
}

} // namespace loto::etcd_helper
