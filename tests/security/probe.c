/* The security probe: run as a RUN step (and under podman/docker for reference), it tries
 * each escape vector of the sandbox notes and prints one line per vector:
 *     <vector> blocked|open <detail>
 * "open" means the attempt worked (or reached the kernel past any filter). Arguments:
 *     probe HTTP_PORT ABSTRACT_NAME LISTEN_PORT MARKER SESSION_KEY USER_KEY
 * Built statically at test time (gcc -static), so it runs in any image. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *vector, int open_, const char *fmt, ...) {
    char detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%s %s %s\n", vector, open_ ? "open" : "blocked", detail);
    fflush(stdout);
}

/* A syscall that returned >= 0, or failed with an errno that means the kernel got to
 * work on it (EINVAL, EFAULT, ...), is open; EPERM/EACCES/ENOSYS mean refused. */
static void verdict(const char *vector, long ret, int err) {
    if (ret >= 0) {
        say(vector, 1, "returned %ld", ret);
    } else {
        int refused = err == EPERM || err == EACCES || err == ENOSYS || err == EAFNOSUPPORT;
        say(vector, !refused, "%s", strerror(err));
    }
}

/* 0: the host's test server answered with the marker; else -errno or 1 (someone else). */
static int http_get(const char *ip, int port, const char *marker) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        int err = errno;
        close(fd);
        return -err;
    }
    char req[] = "GET / HTTP/1.0\r\n\r\n", buf[4096];
    ssize_t n = write(fd, req, sizeof req - 1), total = 0;
    while (n > 0 && total < (ssize_t)sizeof buf && (n = read(fd, buf + total, sizeof buf - total)) > 0)
        total += n;
    close(fd);
    return total > 0 && memmem(buf, total, marker, strlen(marker)) ? 0 : 1;
}

static const char *outcome(int rc) {
    return rc == 0 ? "the host's server answered" : rc == 1 ? "connected, not the host's server"
                                                            : strerror(-rc);
}

static void http_loopback(int port, const char *marker) {
    int a = http_get("127.0.0.1", port, marker), b = http_get("10.0.2.2", port, marker);
    say("http_loopback", a == 0 || b == 0, "127.0.0.1: %s; 10.0.2.2: %s", outcome(a), outcome(b));
}

static void abstract_socket(const char *name) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(a.sun_path + 1, name, n);
    int rc = connect(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n);
    say("abstract_socket", rc == 0, "%s", rc == 0 ? "connected" : strerror(errno));
    close(fd);
}

static void listen_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
        say("listen_port", 0, "bind/listen: %s", strerror(errno));
        return;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int got = poll(&p, 1, 3000);  /* the host tries to connect meanwhile */
    say("listen_port", got > 0, "%s", got > 0 ? "the host connected" : "no connection from the host");
    close(fd);
}

static void sniff(const char *vector, int domain, int type, int proto, const char *marker) {
    int fd = socket(domain, type, proto);
    if (fd < 0) {
        say(vector, 0, "socket: %s", strerror(errno));
        return;
    }
    char buf[65536];
    time_t end = time(NULL) + 2;
    int seen = 0;
    while (!seen && time(NULL) <= end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0 && memmem(buf, n, marker, strlen(marker))) seen = 1;
    }
    close(fd);
    say(vector, seen, seen ? "saw the host's packets" : "socket made; only its own namespace");
}

#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10
static void keyring(const char *vector, long ring, const char *name) {
    long id = syscall(SYS_keyctl, KEYCTL_SEARCH, ring, "user", name, 0);
    if (id < 0) {
        say(vector, 0, "search: %s", strerror(errno));
        return;
    }
    char buf[128] = "";
    long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf - 1);
    say(vector, n > 0, n > 0 ? "read the key" : "found the key, read: %s", strerror(errno));
}

static void unshare_user(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
    int st = 0;
    waitpid(pid, &st, 0);
    int err = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    say("unshare_user", err == 0, "%s", err == 0 ? "unshared" : strerror(err));
}

static void mknod_open(const char *vector, const char *path, mode_t kind, int maj, int min) {
    unlink(path);
    if (mknod(path, kind | 0600, makedev(maj, min))) {
        say(vector, 0, "mknod: %s", strerror(errno));
        return;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    int err = errno;
    if (fd >= 0) close(fd);
    unlink(path);
    say(vector, fd >= 0, fd >= 0 ? "opened" : "mknod ok, open: %s", strerror(err));
}

static unsigned long long status_hex(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long v = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') v = strtoull(line + n + 1, NULL, 16);
    if (f) fclose(f);
    return v;
}

static void listing(const char *vector, const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    say(vector, n > 0, "%d entries", n);
}

static void pids_limit(void) {
    char buf[64] = "";
    FILE *f = fopen("/sys/fs/cgroup/pids.max", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
    }
    struct rlimit r;
    getrlimit(RLIMIT_NPROC, &r);
    int cg = buf[0] && strcmp(buf, "max");
    int rl = r.rlim_cur <= 16384;  /* a distribution's default is in the tens of thousands */
    say("pids_limit", !(cg || rl), "pids.max %s, RLIMIT_NPROC %lld", buf[0] ? buf : "absent",
        rl ? (long long)r.rlim_cur : -1LL);
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: probe HTTP_PORT ABSTRACT LISTEN_PORT MARKER SKEY UKEY\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    http_loopback(atoi(argv[1]), argv[4]);
    abstract_socket(argv[2]);
    listen_port(atoi(argv[3]));
    sniff("packet_socket", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), argv[4]);
    sniff("raw_socket", AF_INET, SOCK_RAW, IPPROTO_UDP, argv[4]);
    keyring("session_keyring", -3, argv[5]);
    keyring("user_keyring", -4, argv[6]);
    verdict("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, -3, 0), errno);
    verdict("add_key", syscall(SYS_add_key, "user", "nbprobe", "x", 1, -2), errno);
    unshare_user();
    long params[32] = {0};
    verdict("io_uring", syscall(425, 4, params), errno);
    verdict("userfaultfd", syscall(SYS_userfaultfd, 0), errno);
    struct { unsigned type, size; unsigned long long config; char rest[112]; } attr = {1, 128, 0, {0}};
    verdict("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0), errno);
    unsigned bpfattr[12] = {2 /* array */, 4, 4, 1};
    verdict("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, bpfattr, sizeof bpfattr), errno);
    verdict("af_vsock", socket(40, SOCK_STREAM, 0), errno);
    verdict("af_alg", socket(38, SOCK_SEQPACKET, 0), errno);
    mknod_open("mknod_loop", "/probe-loop0", S_IFBLK, 7, 0);
    mknod_open("mknod_kmsg", "/probe-kmsg", S_IFCHR, 1, 11);
    int fd = open("/dev/kmsg", O_WRONLY);
    say("dev_kmsg", fd >= 0, "%s", fd >= 0 ? "opened for writing" : strerror(errno));
    unsigned long long eff = status_hex("CapEff"), inh = status_hex("CapInh"),
                       amb = status_hex("CapAmb");
    say("cap_sys_admin", (eff >> 21) & 1, "CapEff %016llx", eff);
    say("cap_inheritable", (inh | amb) != 0, "CapInh %016llx CapAmb %016llx", inh, amb);
    listing("sys_firmware", "/sys/firmware");
    listing("proc_acpi", "/proc/acpi");
    int kc = open("/proc/kcore", O_RDONLY);
    char b;
    long got = kc >= 0 ? read(kc, &b, 1) : -1;
    say("proc_kcore", got > 0, "%s", got > 0 ? "readable" : "masked");
    pids_limit();
    unsigned long long sc = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Seccomp:", 8)) sc = strtoull(line + 8, NULL, 10);
    if (f) fclose(f);
    say("seccomp", sc != 2, "Seccomp %llu", sc);
    return 0;
}
