// Slots across hosts (`slots: N` on an etcd resource): the semaphore recipe on the mutex's
// own keys. Every run's key NAME/<lease hex> is its place in one queue ordered by create
// revision; the first N keys hold. A holder then claims the lowest free slot key
// NAME/slot/<i> (0 <= i < N), created under its lease by a txn that also checks that its
// queue key is still there, so that both go with the lease. The pure parts are here: which
// keys are the queue, how far ahead a key is, which slot is free, and how the holders read.
#pragma once

#include "lock/etcd/helper/etcd_api.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

// NAME/slot/, where the slot keys of lock NAME (prefix "NAME/") are.
std::string slot_prefix(std::string_view prefix);
// NAME/slot/<slot>.
std::string slot_key(std::string_view prefix, int slot);
// Whether `key` is a slot key under `prefix` (not a place in the queue).
bool is_slot_key(std::string_view prefix, std::string_view key);
// The slot number of a slot key, if it is one in 0..slots-1.
std::optional<int> slot_of(std::string_view prefix, std::string_view key, int slots);

// The queue keys of `kvs` (the keys under `prefix`), in their order: slot keys left out.
std::vector<KeyValue> queue_keys(const std::vector<KeyValue>& kvs, std::string_view prefix);

// How many queue keys are ahead of ours (create revision `my_revision`, lease `lease`)
// in `queue`; nullopt when our key is not among them (gone, or not ours).
std::optional<std::size_t>
keys_ahead(const std::vector<KeyValue>& queue, std::int64_t my_revision, std::int64_t lease);

// With `ahead` keys ahead of ours: whether we hold one of the `slots`, and otherwise our
// place in line (1: the next to be let in).
inline bool holds_a_slot(std::size_t ahead, int slots) {
  return ahead < static_cast<std::size_t>(slots);
}
inline std::size_t place_in_line(std::size_t ahead, int slots) {
  return ahead + 1 - static_cast<std::size_t>(slots);
}

// The lowest slot in 0..slots-1 that no key in `taken` (the keys under slot_prefix) has.
std::optional<int>
lowest_free_slot(const std::vector<KeyValue>& taken, std::string_view prefix, int slots);

// The slot whose slot key names `queue_key` (the queue key that claimed it), if any.
std::optional<int> slot_held_by(const std::vector<KeyValue>& kvs,
                                std::string_view prefix,
                                int slots,
                                std::string_view queue_key);

// The holders among `kvs` (every key under `prefix`, by create revision), for people:
// with one slot the oldest key's holder as before; with more, each of the first `slots`
// queue keys as "slot I: HOLDER" (the slot whose key names that queue key; "slot ?" while
// it has none yet), joined by "; ".
std::string describe_holders(const std::vector<KeyValue>& kvs, std::string_view prefix, int slots);
// How many of the queue keys among `kvs` hold (at most `slots`).
std::size_t holder_count(const std::vector<KeyValue>& kvs, std::string_view prefix, int slots);

} // namespace loto::etcd_helper
