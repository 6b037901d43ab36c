// The local backend: an exclusive flock(2) on a file that loto never writes, truncates
// or deletes, opened so that nobody sharing the directory can redirect it.
#include "error.hpp"
#include "lock/lock.hpp"
#include "lock/proc_locks.hpp"
#include "text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace loto {

namespace {

// Documented mode of lock files loto creates, whatever the umask.
constexpr mode_t k_lock_file_mode = 0644;
// A lock file replaced over and over while we wait is an attack or a broken script;
// give up rather than loop forever.
constexpr int k_max_reopen = 100;

class Fd {
public:
  explicit Fd(int fd = -1) : m_fd(fd) {}
  ~Fd() {
    reset();
  }
  Fd(Fd&& other) noexcept : m_fd(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const {
    return m_fd;
  }
  int release() {
    const int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

private:
  int m_fd;
};

// Which slot a run took, and the watch it waited on, if it waited for a slot.
struct TakenSlot {
  int slot = 0;
  Fd watch;
};

class FlockLock final : public HeldLock {
public:
  FlockLock(Fd fd, TakenSlot taken, int slots)
      : m_watch(std::move(taken.watch)), m_fd(std::move(fd)), m_slot(taken.slot), m_slots(slots) {}
  int inheritable_fd() const override {
    return m_fd.get();
  }
  std::vector<std::string> environment() const override {
    if (m_slots == 1) {
      return {};
    }
    return {"LOTO_SLOT=" + std::to_string(m_slot)};
  }
  std::vector<std::pair<std::string, std::string>> audit_fields() const override {
    if (m_slots == 1) {
      return {};
    }
    return {{"slot", std::to_string(m_slot)}};
  }

private:
  // Closing an inotify instance waits for the kernel (about 10 ms here): declared first,
  // it is closed last, after the lock is released, so the next holder does not wait.
  Fd m_watch;
  Fd m_fd; // closing it releases the lock (unless the command inherited a copy)
  int m_slot;
  int m_slots;
};

std::string type_name(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  if (S_ISLNK(mode)) {
    return "a symbolic link";
  }
  return "not a regular file";
}

[[noreturn]] void
refuse(const std::string& path, const std::string& reason, const std::string& advice) {
  throw Error(exit_code::unsafe,
              "refusing lock file " + quoted(path) + ": " + reason + "; " + advice);
}

[[noreturn]] void cannot_open(const std::string& what, const std::string& path, int error) {
  std::string advice;
  if (error == ENOENT) {
    advice = " (create the directory, or set lock_dir or the resource's path)";
  } else if (error == EACCES || error == EPERM) {
    advice = " (run as a user who may create it, or choose another path)";
  }
  throw Error(exit_code::cannot_create,
              "cannot " + what + " " + quoted(path) + ": " + std::strerror(error) + advice);
}

// Checks one directory on the way to the lock file, when running as root: another user
// must not be able to rename or replace what loto is about to use.
void check_directory(int dir_fd, const std::string& dir, const std::string& path) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) {
    cannot_open("inspect the directory of", path, errno);
  }
  if (st.st_uid != 0) {
    refuse(path,
           "directory " + quoted(dir) + " on its path is owned by uid " + std::to_string(st.st_uid),
           "root only locks in directories that root owns");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    refuse(path,
           "directory " + quoted(dir) +
               " on its path is writable by group or others and not sticky",
           "use a directory like /run/lock (mode 1777) or one only root can write");
  }
}

// Opens the directory that holds the lock file. As root it walks the path one component
// at a time (OpenSSH's safe_path rule): every directory must pass check_directory(), and
// a symlink is followed only if root owns it (like /var/lock -> /run/lock); a symlink
// that another user planted in a shared directory could otherwise send loto anywhere.
Fd open_lock_directory(const std::string& dir, const std::string& path) {
  if (::geteuid() != 0) {
    Fd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) {
      cannot_open("open the directory of lock file", path, errno);
    }
    return fd;
  }
  constexpr int k_max_symlinks = 40;
  int symlinks = 0;
  std::vector<std::string> pending; // components still to walk, last one first
  const auto push_components = [&pending](const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t end = std::min(text.find('/', start), text.size());
      if (end > start) {
        parts.push_back(text.substr(start, end - start));
      }
      start = end + 1;
    }
    pending.insert(pending.end(), parts.rbegin(), parts.rend());
  };
  push_components(dir);
  Fd current(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string walked = "/";
  check_directory(current.get(), walked, path);
  while (!pending.empty()) {
    const std::string component = pending.back();
    pending.pop_back();
    const std::string here = (walked == "/" ? "" : walked) + "/" + component;
    struct stat st {};
    if (::fstatat(current.get(), component.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      cannot_open("open the directory of lock file", path, errno);
    }
    if (S_ISLNK(st.st_mode)) {
      if (st.st_uid != 0) {
        refuse(path,
               quoted(here) + " on its path is a symbolic link owned by uid " +
                   std::to_string(st.st_uid),
               "root follows only root's symlinks");
      }
      if (++symlinks > k_max_symlinks) {
        cannot_open("open the directory of lock file", path, ELOOP);
      }
      std::array<char, 4096> target{};
      const ssize_t length =
          ::readlinkat(current.get(), component.c_str(), target.data(), target.size() - 1);
      if (length < 0) {
        cannot_open("open the directory of lock file", path, errno);
      }
      const std::string link(target.data(), static_cast<std::size_t>(length));
      push_components(link);
      if (link.starts_with('/')) {
        current = Fd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        walked = "/";
      }
      continue;
    }
    Fd next(
        ::openat(current.get(), component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      cannot_open("open the directory of lock file", path, errno);
    }
    walked =
        component == ".." ? walked.substr(0, std::max<std::size_t>(1, walked.rfind('/'))) : here;
    check_directory(next.get(), walked, path);
    current = std::move(next);
  }
  return current;
}

// Whether another user may create files in this directory (a sticky shared one).
bool is_shared_directory(int dir_fd) {
  struct stat st {};
  return ::fstat(dir_fd, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

// Opens the lock file `name` in `dir_fd` without following a symlink, without blocking on
// a FIFO and without touching devices; creates it (mode 0644) only if it is absent.
Fd open_lock_file(int dir_fd, const std::string& name, const std::string& path, int access_mode) {
  for (int attempt = 0; attempt < k_max_reopen; ++attempt) {
    struct stat before {};
    if (::fstatat(dir_fd, name.c_str(), &before, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(before.st_mode)) {
        refuse(path, "it is a symbolic link", "remove it; loto never follows links for lock files");
      }
      if (!S_ISREG(before.st_mode)) {
        refuse(path, "it is " + type_name(before.st_mode), "remove it or choose another path");
      }
      const int fd = ::openat(
          dir_fd, name.c_str(), access_mode | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd < 0 && errno == ENOENT) {
        continue; // removed meanwhile: create it
      }
      if (fd < 0 && errno == ELOOP) {
        continue; // replaced by a symlink meanwhile: the check above reports it
      }
      if (fd < 0) {
        cannot_open("open lock file", path, errno);
      }
      return Fd(fd);
    }
    if (errno != ENOENT) {
      cannot_open("inspect lock file", path, errno);
    }
    const int fd =
        ::openat(dir_fd,
                 name.c_str(),
                 access_mode | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                 k_lock_file_mode);
    if (fd >= 0) {
      // The umask must not decide who can open the lock file.
      if (::fchmod(fd, k_lock_file_mode) != 0) {
        const int error = errno;
        ::close(fd);
        cannot_open("set the mode of lock file", path, error);
      }
      return Fd(fd);
    }
    if (errno != EEXIST) {
      cannot_open("create lock file", path, errno);
    }
    // Someone else created it first: open theirs.
  }
  refuse(path, "it keeps changing while loto opens it", "find out what is replacing it");
}

// The type, link count and owner checks on the opened file.
void check_lock_file(int fd, int dir_fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    cannot_open("inspect lock file", path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    refuse(path, "it is " + type_name(st.st_mode), "remove it or choose another path");
  }
  if (st.st_nlink > 1) {
    refuse(path,
           "it has " + std::to_string(st.st_nlink) + " hard links",
           "remove it; a hard link may point at another user's file");
  }
  if (is_shared_directory(dir_fd) && st.st_uid != ::geteuid() && st.st_uid != 0) {
    refuse(path,
           "it is owned by uid " + std::to_string(st.st_uid) + " in a shared directory",
           "remove it, or use a lock path in a directory others cannot write");
  }
}

// After the lock is taken: the path must still name the file we locked. If it was
// deleted or replaced meanwhile, a newcomer can lock the new file while we hold the old.
bool still_current(int fd, int dir_fd, const std::string& name) {
  struct stat held {};
  struct stat now {};
  if (::fstat(fd, &held) != 0 || held.st_nlink == 0) {
    return false;
  }
  if (::fstatat(dir_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) {
    return false;
  }
  return held.st_dev == now.st_dev && held.st_ino == now.st_ino;
}

[[noreturn]] void lock_failed(const std::string& path, int error) {
  if (error == ENOLCK || error == EBADF) {
    throw Error(exit_code::cannot_create,
                "cannot lock " + quoted(path) + ": " + std::strerror(error) +
                    " (the filesystem does not support flock; use a local directory)");
  }
  throw Error(exit_code::os_error, "cannot lock " + quoted(path) + ": " + std::strerror(error));
}

// Tries once without waiting. NFSv4 grants an exclusive flock only on a file opened for
// writing: on EBADF the file is opened again that way.
bool try_lock(Fd& fd, int dir_fd, const std::string& name, const std::string& path, int operation) {
  bool reopened_for_nfs = false;
  for (;;) {
    if (::flock(fd.get(), operation | LOCK_NB) == 0) {
      return true;
    }
    if (errno == EWOULDBLOCK) {
      return false;
    }
    if (errno != EINTR) {
      if (errno != EBADF || reopened_for_nfs) {
        lock_failed(path, errno);
      }
      reopened_for_nfs = true;
      fd = open_lock_file(dir_fd, name, path, O_RDWR);
      check_lock_file(fd.get(), dir_fd, path);
    }
  }
}

AcquireStatus block_on(int fd, int operation, WaitControl& wait, const std::string& path) {
  for (;;) {
    if (wait.interrupt_signal() != 0) {
      return AcquireStatus::interrupted;
    }
    if (wait.deadline_passed()) {
      return AcquireStatus::timed_out;
    }
    if (::flock(fd, operation) == 0) {
      return AcquireStatus::acquired;
    }
    if (errno != EINTR) {
      lock_failed(path, errno);
    }
    wait.tick();
  }
}

// ---- The waiting queue ----
// Each waiter holds an exclusive flock on a ticket file of its own, "<lock file>.q<sequence>",
// from the moment it starts to wait until it has the lock or gives up. The file appears in
// the directory already locked, so a live ticket is one that cannot be locked, and a waiter
// that died (even by SIGKILL) leaves an unlocked file that nobody waits for. The lock file
// itself stays an ordinary flock(2) lock, so flock(1) users exclude loto and loto them.

constexpr int k_sequence_digits = 20;

struct Ticket {
  Fd fd;
  std::uint64_t sequence = 0;
  std::string file;
};

std::string ticket_file(const std::string& name, std::uint64_t sequence) {
  std::array<char, k_sequence_digits + 1> digits{};
  (void)std::snprintf(digits.data(),
                      digits.size(),
                      "%0*llu",
                      k_sequence_digits,
                      static_cast<unsigned long long>(sequence));
  return name + ".q" + digits.data();
}

// The tickets of lock file `name` (sequence, file name), oldest first.
std::vector<std::pair<std::uint64_t, std::string>>
list_tickets(int dir_fd, const std::string& name, const std::string& path) {
  // getdents64 straight into a buffer on the stack: every run on a fifo lock lists the
  // directory, and opendir() would add an fstat, two fcntl and a 32 KiB allocation.
  const Fd listing(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (listing.get() < 0) {
    if (errno == EACCES) {
      return {}; // a directory we may not list holds no tickets we could take part in
    }
    cannot_open("list the waiters of", path, errno);
  }
  const std::string prefix = name + ".q";
  std::vector<std::pair<std::uint64_t, std::string>> tickets;
  alignas(dirent64) std::array<char, 8192> buffer{};
  for (;;) {
    const long got = ::syscall(SYS_getdents64, listing.get(), buffer.data(), buffer.size());
    if (got < 0) {
      cannot_open("list the waiters of", path, errno);
    }
    if (got == 0) {
      break;
    }
    for (long at = 0; at < got;) {
      dirent64 entry{};
      std::memcpy(&entry,
                  buffer.data() + at,
                  std::min<std::size_t>(sizeof entry, static_cast<std::size_t>(got - at)));
      const std::string_view file(buffer.data() + at + offsetof(dirent64, d_name));
      if (entry.d_reclen == 0) {
        break; // never from the kernel; no endless loop if it were
      }
      at += entry.d_reclen;
      // Exactly 20 digits that fit in 64 bits: anyone may name a file in a shared
      // directory, and a larger number is no ticket loto made (and must not throw).
      if (file.size() == prefix.size() + k_sequence_digits && file.starts_with(prefix)) {
        if (const auto sequence = parse_number<std::uint64_t>(file.substr(prefix.size()))) {
          tickets.emplace_back(*sequence, file);
        }
      }
    }
  }
  std::sort(tickets.begin(), tickets.end());
  return tickets;
}

// Opens a ticket to look at it; -1 if it is gone or not a regular file.
Fd open_ticket(int dir_fd, const std::string& file) {
  Fd fd(::openat(dir_fd, file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  struct stat st {};
  if (fd.get() >= 0 && (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))) {
    fd.reset();
  }
  return fd;
}

// A ticket nobody holds is what a waiter that died left behind: removed if the name still
// names the file we looked at (best effort: in a sticky directory only its owner may).
void remove_stale_ticket(int dir_fd, const std::string& file, int fd) {
  struct stat held {};
  struct stat now {};
  if (::fstat(fd, &held) == 0 && ::fstatat(dir_fd, file.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
      held.st_dev == now.st_dev && held.st_ino == now.st_ino) {
    ::unlinkat(dir_fd, file.c_str(), 0);
  }
}

// Whether anyone waits for lock file `name`: a live ticket.
bool someone_waits(int dir_fd, const std::string& name, const std::string& path) {
  const auto live = [dir_fd](const std::pair<std::uint64_t, std::string>& ticket) {
    const Fd fd = open_ticket(dir_fd, ticket.second);
    if (fd.get() < 0) {
      return false;
    }
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
      return true;
    }
    remove_stale_ticket(dir_fd, ticket.second, fd.get());
    return false;
  };
  return std::ranges::any_of(list_tickets(dir_fd, name, path), live);
}

// Whether a failure to create a ticket means "not allowed here" (a lock file in a
// directory this user cannot write, a read-only filesystem): loto then waits unqueued.
bool may_not_queue(int error) {
  return error == EACCES || error == EPERM || error == EROFS;
}

// Joins the end of the queue: a new ticket, locked before it gets its name, numbered after
// every ticket there (and after the clock, so that a number is not used twice). A ticket
// without a file (fd -1) when this user may not create files next to the lock file.
Ticket take_ticket(int dir_fd, const std::string& name, const std::string& path) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto clock_sequence = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  const std::string temporary =
      name + ".t" + std::to_string(::getpid()) + "." + std::to_string(clock_sequence);
  Ticket ticket;
  ticket.fd = Fd(::openat(dir_fd,
                          temporary.c_str(),
                          O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                          k_lock_file_mode));
  if (ticket.fd.get() < 0) {
    if (may_not_queue(errno)) {
      return ticket;
    }
    cannot_open("create a waiting ticket next to", path, errno);
  }
  (void)::fchmod(ticket.fd.get(), k_lock_file_mode);
  if (::flock(ticket.fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::unlinkat(dir_fd, temporary.c_str(), 0);
    cannot_open("lock a waiting ticket next to", path, error);
  }
  for (int attempt = 0; attempt < k_max_reopen; ++attempt) {
    const auto tickets = list_tickets(dir_fd, name, path);
    ticket.sequence = std::max(tickets.empty() ? 0 : tickets.back().first + 1, clock_sequence);
    ticket.file = ticket_file(name, ticket.sequence);
    if (::renameat2(dir_fd, temporary.c_str(), dir_fd, ticket.file.c_str(), RENAME_NOREPLACE) ==
        0) {
      return ticket;
    }
    if (errno != EEXIST) {
      const int error = errno;
      ::unlinkat(dir_fd, temporary.c_str(), 0);
      cannot_open("queue for", path, error);
    }
  }
  ::unlinkat(dir_fd, temporary.c_str(), 0);
  refuse(path, "its waiting queue keeps changing", "find out what is creating files next to it");
}

// Leaves the queue: the name goes first, then the lock, which wakes whoever waits behind.
void leave_queue(int dir_fd, Ticket& ticket) {
  if (ticket.fd.get() < 0) {
    return;
  }
  ::unlinkat(dir_fd, ticket.file.c_str(), 0);
  ticket.fd.reset();
}

// Blocks on `fd` with `operation` until it is granted, the deadline passes or a signal asks
// loto to stop. The wait is in the kernel; the timer and the signals interrupt it.
AcquireStatus block_on(int fd, int operation, WaitControl& wait, const std::string& path);

// Waits until no live ticket is ahead of `ticket`: each time, for the nearest one ahead,
// which leaves the queue when it gets the lock, gives up or dies.
AcquireStatus wait_for_turn(int dir_fd,
                            const std::string& name,
                            const Ticket& ticket,
                            WaitControl& wait,
                            const std::string& path) {
  for (;;) {
    const auto tickets = list_tickets(dir_fd, name, path);
    Fd ahead;
    for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) {
      if (it->first >= ticket.sequence) {
        continue;
      }
      Fd fd = open_ticket(dir_fd, it->second);
      if (fd.get() < 0) {
        continue;
      }
      if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        remove_stale_ticket(dir_fd, it->second, fd.get());
        continue;
      }
      ahead = std::move(fd);
      break;
    }
    if (ahead.get() < 0) {
      return AcquireStatus::acquired;
    }
    const AcquireStatus status = block_on(ahead.get(), LOCK_SH, wait, path);
    if (status != AcquireStatus::acquired) {
      return status;
    }
  }
}

// ---- Slots ----
// A resource with N slots has N lock files: the path itself (slot 0) and path.1 ...
// path.N-1. A holder locks any one of them.

// An absolute lock path as its directory and its last component.
std::pair<std::string, std::string> split_lock_path(const std::string& path) {
  const auto slash = path.rfind('/');
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

// The lock file of `slot`, given the lock file's name or path.
std::string slot_file(const std::string& name, int slot) {
  return slot == 0 ? name : name + "." + std::to_string(slot);
}

// Waits for any slot of several: the lock files are watched for closes (a holder's
// release closes its descriptor), so the wait sleeps in the kernel between attempts.
AcquireStatus wait_for_slot(std::vector<Fd>& slots,
                            int operation,
                            WaitControl& wait,
                            const std::string& path,
                            TakenSlot& taken) {
  taken.watch = Fd(::inotify_init1(IN_CLOEXEC));
  const Fd& watch = taken.watch;
  if (watch.get() < 0) {
    throw Error(exit_code::os_error,
                "cannot watch the slots of " + quoted(path) + ": " + std::strerror(errno));
  }
  for (const Fd& slot : slots) {
    const std::string self = "/proc/self/fd/" + std::to_string(slot.get());
    if (::inotify_add_watch(watch.get(), self.c_str(), IN_CLOSE) < 0) {
      throw Error(exit_code::os_error,
                  "cannot watch the slots of " + quoted(path) + ": " + std::strerror(errno));
    }
  }
  std::array<char, 4096> events{};
  for (;;) {
    if (wait.interrupt_signal() != 0) {
      return AcquireStatus::interrupted;
    }
    if (wait.deadline_passed()) {
      return AcquireStatus::timed_out;
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (::flock(slots[i].get(), operation | LOCK_NB) == 0) {
        taken.slot = static_cast<int>(i);
        return AcquireStatus::acquired;
      }
    }
    if (::read(watch.get(), events.data(), events.size()) < 0 && errno != EINTR) {
      throw Error(exit_code::os_error,
                  "cannot watch the slots of " + quoted(path) + ": " + std::strerror(errno));
    }
    wait.tick();
  }
}

class FlockBackend final : public LockBackend {
public:
  AcquireResult acquire(const LockTarget& target, WaitControl& wait) override {
    const auto [dir, name] = split_lock_path(target.path);
    for (int attempt = 0; attempt < k_max_reopen; ++attempt) {
      Fd dir_fd = open_lock_directory(dir, target.path);
      std::vector<Fd> slots;
      for (int slot = 0; slot < target.slots; ++slot) {
        const std::string file = slot_file(name, slot);
        const std::string path = slot_file(target.path, slot);
        slots.push_back(open_lock_file(dir_fd.get(), file, path, O_RDONLY));
        check_lock_file(slots.back().get(), dir_fd.get(), path);
      }
      TakenSlot taken;
      const AcquireStatus status = take(dir_fd.get(), name, slots, target, wait, taken);
      if (status != AcquireStatus::acquired) {
        return {status, nullptr, ""};
      }
      Fd& held = slots[static_cast<std::size_t>(taken.slot)];
      if (still_current(held.get(), dir_fd.get(), slot_file(name, taken.slot))) {
        return {AcquireStatus::acquired,
                std::make_unique<FlockLock>(std::move(held), std::move(taken), target.slots),
                ""};
      }
      // Replaced while we waited: start over on the file the path names now.
    }
    refuse(
        target.path, "it keeps being replaced while loto waits", "find out what is replacing it");
  }

  // The first holder that inspect() finds (the busy message names one holder only).
  std::optional<LockHolder> find_holder(const LockTarget& target) const override {
    const LockState state = inspect(target);
    if (state.holders.empty()) {
      return std::nullopt;
    }
    return LockHolder{state.holders.front().pid, state.holders.front().command, "", 0, 0};
  }

  // The holders of every slot, then the waiters. With a queue that orders them (fifo,
  // slots): those in the queue in ticket order (waiting since the ticket was made), then
  // any other process blocked on a slot file (flock(1) users, loto runs that may not
  // queue). Otherwise the kernel's order, then ticket holders not blocked in the kernel.
  LockState inspect(const LockTarget& target) const override {
    LockState state;
    std::vector<LockParty> unqueued; // blocked on a lock file, in the kernel's order
    std::vector<LockParty> queued;   // holding a ticket, in the queue's order
    const std::string proc_locks = read_proc_locks(); // once for every slot and ticket
    for (int slot = 0; slot < target.slots; ++slot) {
      LockState part = inspect_flock_lock(slot_file(target.path, slot), proc_locks);
      for (auto& holder : part.holders) {
        holder.slot = target.slots > 1 ? slot : -1;
        state.holders.push_back(std::move(holder));
      }
      unqueued.insert(unqueued.end(), part.waiters.begin(), part.waiters.end());
    }
    const auto [dir, name] = split_lock_path(target.path);
    const Fd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() >= 0) {
      for (const auto& [sequence, file] : list_tickets(dir_fd.get(), name, target.path)) {
        LockState ticket = inspect_flock_lock((dir == "/" ? "" : dir) + "/" + file, proc_locks);
        struct stat st {};
        if (ticket.holders.empty() ||
            ::fstatat(dir_fd.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          continue; // a ticket nobody holds: its waiter is gone
        }
        LockParty waiter = std::move(ticket.holders.front());
        waiter.mode.clear();
        waiter.since = iso8601_utc_ms(std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::seconds(st.st_mtim.tv_sec) +
                std::chrono::nanoseconds(st.st_mtim.tv_nsec))));
        queued.push_back(std::move(waiter));
      }
    }
    // Where the queue decides who is next, its order comes first; otherwise the kernel's.
    const bool ordered = target.fifo || target.slots > 1;
    std::vector<LockParty>& first = ordered ? queued : unqueued;
    std::vector<LockParty>& rest = ordered ? unqueued : queued;
    state.waiters.swap(first);
    for (auto& party : rest) {
      const bool listed = std::any_of(state.waiters.begin(),
                                      state.waiters.end(),
                                      [&](const LockParty& w) { return w.pid == party.pid; });
      if (!listed) {
        state.waiters.push_back(std::move(party));
      }
    }
    return state;
  }

private:
  // Takes one of the slots: at once if one is free, else in the queue. A shared run, and
  // any run on a fifo lock or one with slots, takes a free slot only if nobody waits: readers that
  // keep coming cannot starve an exclusive waiter, and a newcomer cannot slip past the head of a
  // fifo queue in the moment between a release and the head's taking the lock.
  static AcquireStatus take(int dir_fd,
                            const std::string& name,
                            std::vector<Fd>& slots,
                            const LockTarget& target,
                            WaitControl& wait,
                            TakenSlot& taken) {
    const int operation = target.shared ? LOCK_SH : LOCK_EX;
    const bool defers_to_waiters = target.shared || target.fifo || slots.size() > 1;
    if (!defers_to_waiters || !someone_waits(dir_fd, name, target.path)) {
      for (std::size_t i = 0; i < slots.size(); ++i) {
        if (try_lock(
                slots[i], dir_fd, slot_file(name, static_cast<int>(i)), target.path, operation)) {
          taken.slot = static_cast<int>(i);
          return AcquireStatus::acquired;
        }
      }
    }
    if (!wait.may_wait()) {
      return AcquireStatus::busy;
    }
    wait.begin_blocking();
    // Every waiter holds a ticket, so that shared runs see it. With queue: fifo, for
    // shared runs and for slots it also waits its turn (for slots, so that a freed slot
    // wakes one waiter, not all); otherwise the kernel picks among the waiters. Where
    // this user may not create a ticket, it waits unqueued.
    Ticket ticket = take_ticket(dir_fd, name, target.path);
    AcquireStatus status = AcquireStatus::acquired;
    if (ticket.fd.get() >= 0 && (target.fifo || target.shared || slots.size() > 1)) {
      status = wait_for_turn(dir_fd, name, ticket, wait, target.path);
    }
    if (status == AcquireStatus::acquired) {
      taken.slot = 0;
      status = slots.size() == 1 ? block_on(slots[0].get(), operation, wait, target.path)
                                 : wait_for_slot(slots, operation, wait, target.path, taken);
    }
    leave_queue(dir_fd, ticket);
    return status;
  }
};

} // namespace

std::unique_ptr<LockBackend> make_flock_backend() {
  return std::make_unique<FlockBackend>();
}

} // namespace loto
