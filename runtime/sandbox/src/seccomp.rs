//! Seccomp allow-lists: reviewed JSON data, one file per target architecture, picked at build
//! time and compiled to BPF — with seccompiler on x86_64 and aarch64, with our own generator
//! ([`bpf`]) on 32-bit ARM, which seccompiler cannot target. Every profile's default action is
//! `kill_process`; both compilers give a rule the same meaning (tested against each other).
//!
//! File format (`runtime/sandbox/seccomp/<arch>.json`): `{"arch", "comment", "profiles": {name:
//! {"comment", "extends"?, "syscalls": [rule…]}}}`. A rule is seccompiler's own rule object
//! (`syscall`, optional `args` conditions), and here a `comment` is required on every rule and
//! every condition. `extends` (one profile's name, or a list of them) copies those profiles'
//! rules first, each profile once, a rule that two of them share once. Adding a syscall is one
//! line.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use warden_ipc::SeccompProfile;

mod arm_eabi;
pub(crate) mod bpf;

/// The profile file of the architecture this crate is built for, if there is one.
#[cfg(target_arch = "x86_64")]
const PROFILES: Option<(&str, &str)> = Some(("x86_64", include_str!("../seccomp/x86_64.json")));
#[cfg(target_arch = "aarch64")]
const PROFILES: Option<(&str, &str)> = Some(("aarch64", include_str!("../seccomp/aarch64.json")));
/// 32-bit ARM (the armv7 devices): compiled by our own generator, `bpf.rs`.
#[cfg(target_arch = "arm")]
const PROFILES: Option<(&str, &str)> = Some(("armv7", include_str!("../seccomp/armv7.json")));
/// Anything else: no profile; confinement refuses to finish rather than run without a filter.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
const PROFILES: Option<(&str, &str)> = None;

/// What compiles a profile file's rules to BPF.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    /// seccompiler: x86_64, aarch64.
    Seccompiler(seccompiler::TargetArch),
    /// Our generator (`bpf.rs`): 32-bit ARM, which seccompiler has no backend for.
    Own(&'static bpf::Arch<'static>),
}

/// The compiler for the profile file named `arch` (`x86_64`, `aarch64`, `armv7`).
pub(crate) fn backend(arch: &str) -> Option<Backend> {
    match arch {
        "x86_64" => Some(Backend::Seccompiler(seccompiler::TargetArch::x86_64)),
        "aarch64" => Some(Backend::Seccompiler(seccompiler::TargetArch::aarch64)),
        "armv7" => Some(Backend::Own(&bpf::ARM_EABI)),
        _ => None,
    }
}

/// Why a profile could not be loaded, compiled or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    #[error("no seccomp profile file for target architecture {arch}")]
    NoProfileForArch { arch: &'static str },
    #[error("seccomp profile file {arch}.json: {message}")]
    BadFile { arch: String, message: String },
    #[error("seccomp profile {profile} is not in {arch}.json")]
    NoSuchProfile { arch: String, profile: String },
    #[error("compiling seccomp profile {profile} for {arch}: {message}")]
    Compile {
        arch: String,
        profile: String,
        message: String,
    },
    #[error("installing seccomp profile {profile}: {message}")]
    Install { profile: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    pub(crate) arch: String,
    /// Read by reviewers only.
    #[allow(dead_code)]
    pub(crate) comment: String,
    pub(crate) profiles: BTreeMap<String, ProfileDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileDef {
    /// Read by the review tests only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) comment: String,
    #[serde(default)]
    pub(crate) extends: Option<Extends>,
    pub(crate) syscalls: Vec<Rule>,
}

/// The profiles a profile builds on: one name, or several (`worker_storage_devices` is
/// `worker_storage` and `worker_devices`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Extends {
    One(String),
    Many(Vec<String>),
}

impl Extends {
    fn names(&self) -> &[String] {
        match self {
            Extends::One(name) => std::slice::from_ref(name),
            Extends::Many(names) => names,
        }
    }
}

/// One seccompiler rule, with a required comment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) syscall: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) args: Option<Vec<Condition>>,
    pub(crate) comment: String,
    /// Needed only by builds with debug assertions (Rust std's own checks); left out of
    /// release builds, which are what devices run. Never sent to seccompiler.
    #[serde(default, skip_serializing)]
    pub(crate) debug_only: bool,
}

impl Rule {
    /// The same call under the same conditions (comments may differ).
    fn same_as(&self, other: &Rule) -> bool {
        let conditions = |rule: &Rule| -> Option<Vec<(u8, String, String, u64)>> {
            rule.args.as_ref().map(|args| {
                args.iter()
                    .map(|c| (c.index, c.len.clone(), c.op.to_string(), c.val))
                    .collect()
            })
        };
        self.syscall == other.syscall
            && self.debug_only == other.debug_only
            && conditions(self) == conditions(other)
    }
}

/// One seccompiler argument condition, with a required comment (e.g. the ioctl's name).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Condition {
    pub(crate) index: u8,
    #[serde(rename = "type")]
    pub(crate) len: String,
    pub(crate) op: serde_json::Value,
    pub(crate) val: u64,
    pub(crate) comment: String,
}

/// The file's name for a profile.
pub(crate) fn profile_name(profile: SeccompProfile) -> &'static str {
    match profile {
        SeccompProfile::Worker => "worker",
        SeccompProfile::WorkerStorage => "worker_storage",
        SeccompProfile::WorkerDevices => "worker_devices",
        SeccompProfile::WorkerStorageDevices => "worker_storage_devices",
        SeccompProfile::WorkerNetwork => "worker_network",
        SeccompProfile::WorkerStorageNetwork => "worker_storage_network",
        SeccompProfile::Compiler => "compiler",
    }
}

pub(crate) fn parse(arch: &str, text: &str) -> Result<ProfileFile, SeccompError> {
    let file: ProfileFile = serde_json::from_str(text).map_err(|e| SeccompError::BadFile {
        arch: arch.to_owned(),
        message: e.to_string(),
    })?;
    if file.arch != arch {
        return Err(SeccompError::BadFile {
            arch: arch.to_owned(),
            message: format!("says arch {:?}", file.arch),
        });
    }
    Ok(file)
}

impl ProfileFile {
    /// The rules of `name`: those of the profiles it extends first (depth first, in the order
    /// listed, each profile once), then its own. A rule equal to one already taken (same call,
    /// same conditions; comments aside) is taken once: two parents may both need `read`.
    pub(crate) fn rules(&self, name: &str) -> Result<Vec<Rule>, SeccompError> {
        let mut order = Vec::new();
        self.visit(name, &mut Vec::new(), &mut order)?;
        let mut rules: Vec<Rule> = Vec::new();
        for profile in &order {
            for rule in self.profiles.get(profile).iter().flat_map(|d| &d.syscalls) {
                if !rules.iter().any(|taken| taken.same_as(rule)) {
                    rules.push(rule.clone());
                }
            }
        }
        Ok(rules)
    }

    /// Appends `name` to `order` after the profiles it extends; `stack` is the path from the
    /// profile asked for, to refuse cycles.
    fn visit(
        &self,
        name: &str,
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), SeccompError> {
        if stack.iter().any(|s| s == name) || stack.len() > 8 {
            return Err(SeccompError::BadFile {
                arch: self.arch.clone(),
                message: format!("profile {name} extends itself"),
            });
        }
        if order.iter().any(|done| done == name) {
            return Ok(());
        }
        let def = self
            .profiles
            .get(name)
            .ok_or_else(|| SeccompError::NoSuchProfile {
                arch: self.arch.clone(),
                profile: name.to_owned(),
            })?;
        stack.push(name.to_owned());
        for parent in def.extends.iter().flat_map(Extends::names) {
            self.visit(parent, stack, order)?;
        }
        stack.pop();
        order.push(name.to_owned());
        Ok(())
    }

    /// The rules of `name` for a build with (`debug`) or without debug assertions.
    pub(crate) fn rules_for_build(
        &self,
        name: &str,
        debug: bool,
    ) -> Result<Vec<Rule>, SeccompError> {
        let mut rules = self.rules(name)?;
        rules.retain(|r| debug || !r.debug_only);
        Ok(rules)
    }

    /// The distinct syscall names of a profile (every rule, debug-only ones too), sorted.
    #[cfg(test)]
    pub(crate) fn syscalls(&self, name: &str) -> Result<BTreeSet<String>, SeccompError> {
        Ok(self.rules(name)?.into_iter().map(|r| r.syscall).collect())
    }

    /// The distinct syscall names of a profile in a build with or without debug assertions.
    pub(crate) fn syscalls_for_build(
        &self,
        name: &str,
        debug: bool,
    ) -> Result<BTreeSet<String>, SeccompError> {
        Ok(self
            .rules_for_build(name, debug)?
            .into_iter()
            .map(|r| r.syscall)
            .collect())
    }

    /// Compiles `name` with `backend`: allow on match, kill the process otherwise.
    pub(crate) fn compile(
        &self,
        name: &str,
        backend: Backend,
    ) -> Result<seccompiler::BpfProgram, SeccompError> {
        let rules = self.rules_for_build(name, cfg!(debug_assertions))?;
        let arch = match backend {
            Backend::Seccompiler(arch) => arch,
            Backend::Own(arch) => return bpf::compile(arch, name, &rules),
        };
        let filter = serde_json::json!({
            name: {
                "mismatch_action": "kill_process",
                "match_action": "allow",
                "filter": rules,
            }
        });
        let text = filter.to_string();
        let err = |message: String| SeccompError::Compile {
            arch: self.arch.clone(),
            profile: name.to_owned(),
            message,
        };
        let mut programs = seccompiler::compile_from_json(text.as_bytes(), arch)
            .map_err(|e| err(e.to_string()))?;
        programs
            .remove(name)
            .ok_or_else(|| err("seccompiler returned no program".into()))
    }
}

/// A compiled profile, ready to install.
#[derive(Debug)]
pub(crate) struct CompiledProfile {
    pub(crate) name: &'static str,
    pub(crate) arch: &'static str,
    pub(crate) syscalls: usize,
    program: seccompiler::BpfProgram,
}

/// Loads and compiles the build target's profile.
pub(crate) fn compile_for_this_arch(
    profile: SeccompProfile,
) -> Result<CompiledProfile, SeccompError> {
    let (arch, text) = PROFILES.ok_or(SeccompError::NoProfileForArch {
        arch: std::env::consts::ARCH,
    })?;
    let target = backend(arch).ok_or_else(|| SeccompError::Compile {
        arch: arch.to_owned(),
        profile: profile_name(profile).to_owned(),
        message: "no BPF compiler for this architecture".into(),
    })?;
    let file = parse(arch, text)?;
    let name = profile_name(profile);
    let program = file.compile(name, target)?;
    Ok(CompiledProfile {
        name,
        arch,
        syscalls: file.syscalls_for_build(name, cfg!(debug_assertions))?.len(),
        program,
    })
}

impl CompiledProfile {
    /// Installs the filter on the calling thread (the only one). Irreversible. seccompiler's
    /// installer is architecture-independent (`seccomp(SECCOMP_SET_MODE_FILTER)` with the
    /// program as given), so it installs our ARM programs too.
    pub(crate) fn install(&self) -> Result<(), SeccompError> {
        seccompiler::apply_filter(&self.program).map_err(|e| SeccompError::Install {
            profile: self.name.to_owned(),
            message: e.to_string(),
        })
    }
}

/// The syscalls `profile` allows in this build (architecture, and debug assertions or not),
/// sorted: for reviews, benchmarks and the supervisor's status page.
pub fn profile_syscalls(profile: SeccompProfile) -> Result<Vec<String>, SeccompError> {
    let (arch, text) = PROFILES.ok_or(SeccompError::NoProfileForArch {
        arch: std::env::consts::ARCH,
    })?;
    Ok(parse(arch, text)?
        .syscalls_for_build(profile_name(profile), cfg!(debug_assertions))?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const FILES: [(&str, &str); 3] = [
        ("x86_64", include_str!("../seccomp/x86_64.json")),
        ("aarch64", include_str!("../seccomp/aarch64.json")),
        ("armv7", include_str!("../seccomp/armv7.json")),
    ];

    pub(crate) const PROFILES_NAMES: [&str; 7] = [
        "worker",
        "worker_storage",
        "worker_devices",
        "worker_storage_devices",
        "worker_network",
        "worker_storage_network",
        "compiler",
    ];

    /// The profiles of apps granted network access: the only ones that may accept connections
    /// (on a listening socket the supervisor made and passed).
    const NETWORK_PROFILES: [&str; 2] = ["worker_network", "worker_storage_network"];

    /// Allowed in the network profiles only.
    const NETWORK_ONLY: &[&str] = &["accept4"];

    /// No profile may contain any of these: each opens a way out of the sandbox or into the
    /// kernel's less-travelled code.
    pub(crate) const DENIED: &[&str] = &[
        "socket",
        "socketpair",
        "connect",
        "bind",
        "listen",
        "accept",
        "open",
        "creat",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "execve",
        "execveat",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "process_madvise",
        "pidfd_open",
        "pidfd_getfd",
        "pidfd_send_signal",
        "kill",
        "tkill",
        "tgkill",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "fsopen",
        "fsmount",
        "fsconfig",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "unshare",
        "setns",
        "bpf",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "userfaultfd",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "memfd_create",
        "memfd_secret",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setgroups",
        "setfsuid",
        "setfsgid",
        "capset",
        "prctl",
        "seccomp",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "chmod",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "fchown",
        "fchownat",
        "lchown",
        "mknod",
        "mknodat",
        "name_to_handle_at",
        "open_by_handle_at",
        "quotactl",
        "swapon",
        "swapoff",
        "reboot",
        "syslog",
        "acct",
        "iopl",
        "ioperm",
        "personality",
        "mbind",
        "migrate_pages",
        "move_pages",
        "set_mempolicy",
        "fanotify_init",
        "inotify_init1",
        "lookup_dcookie",
        "vhangup",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "sethostname",
        "setdomainname",
        "uselib",
        "modify_ldt",
        // 32-bit ARM's variants of the calls above: 32-bit ids (the plain names take 16-bit
        // ids there) and 64-bit time.
        "setuid32",
        "setgid32",
        "setreuid32",
        "setregid32",
        "setresuid32",
        "setresgid32",
        "setgroups32",
        "setfsuid32",
        "setfsgid32",
        "chown32",
        "fchown32",
        "lchown32",
        "clock_settime64",
        "clock_adjtime64",
    ];

    fn each_file() -> impl Iterator<Item = (&'static str, ProfileFile, Backend)> {
        FILES
            .iter()
            .map(|(arch, text)| (*arch, parse(arch, text).unwrap(), backend(arch).unwrap()))
    }

    #[test]
    fn every_profile_of_every_arch_compiles() {
        for (arch, file, target) in each_file() {
            for name in PROFILES_NAMES {
                let program = file.compile(name, target).unwrap();
                assert!(!program.is_empty(), "{arch}/{name}");
            }
            let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            let mut expected = PROFILES_NAMES.to_vec();
            expected.sort_unstable();
            assert_eq!(names, expected, "{arch}: unexpected profiles");
        }
    }

    #[test]
    fn every_rule_and_condition_says_why() {
        for (arch, file, _) in each_file() {
            for (name, def) in &file.profiles {
                assert!(
                    !def.comment.trim().is_empty(),
                    "{arch}/{name} has no comment"
                );
                for rule in &def.syscalls {
                    assert!(
                        rule.comment.trim().len() >= 8,
                        "{arch}/{name}: {} has no real comment",
                        rule.syscall
                    );
                    for cond in rule.args.iter().flatten() {
                        assert!(
                            !cond.comment.trim().is_empty(),
                            "{arch}/{name}: a condition of {} has no comment",
                            rule.syscall
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_profile_allows_a_dangerous_syscall() {
        for (arch, file, _) in each_file() {
            for name in PROFILES_NAMES {
                let allowed = file.syscalls(name).unwrap();
                let bad: Vec<&&str> = DENIED.iter().filter(|s| allowed.contains(**s)).collect();
                assert!(bad.is_empty(), "{arch}/{name} allows {bad:?}");
                if !NETWORK_PROFILES.contains(&name) {
                    let network: Vec<&&str> = NETWORK_ONLY
                        .iter()
                        .filter(|s| allowed.contains(**s))
                        .collect();
                    assert!(network.is_empty(), "{arch}/{name} allows {network:?}");
                }
            }
        }
    }

    #[test]
    fn ioctl_is_only_ever_allowed_with_a_named_request() {
        for (arch, file, _) in each_file() {
            for name in PROFILES_NAMES {
                for rule in file.rules(name).unwrap() {
                    if ["ioctl", "fcntl", "fcntl64"].contains(&rule.syscall.as_str()) {
                        let conds = rule.args.unwrap_or_default();
                        assert!(
                            conds.iter().any(|c| c.index == 1 && c.op == "eq"),
                            "{arch}/{name}: {} without a request restriction",
                            rule.syscall
                        );
                    }
                }
            }
        }
    }

    /// The x86_64 calls aarch64 lacks, and the call glibc makes there instead.
    const AARCH64_NAMES: &[(&str, &str)] = &[
        // glibc's epoll_wait is epoll_pwait with no signal mask where the kernel has no
        // epoll_wait (the generic syscall table of newer architectures).
        ("epoll_wait", "epoll_pwait"),
    ];

    #[test]
    fn every_arch_allows_the_same_calls_where_the_kernel_has_them() {
        // aarch64 lacks legacy calls x86_64 keeps (poll, open, epoll_wait, ...); those in a
        // profile are renamed by AARCH64_NAMES, and then the sets must be equal. List any
        // other exception here.
        let x86_only: BTreeSet<&str> = BTreeSet::new();
        let files: Vec<_> = each_file().collect();
        for name in PROFILES_NAMES {
            let x86: BTreeSet<String> = files[0]
                .1
                .syscalls(name)
                .unwrap()
                .into_iter()
                .map(|call| {
                    AARCH64_NAMES
                        .iter()
                        .find(|(x, _)| *x == call)
                        .map_or(call.clone(), |(_, arm)| (*arm).to_owned())
                })
                .collect();
            let arm = files[1].1.syscalls(name).unwrap();
            let only_x86: BTreeSet<&str> = x86.difference(&arm).map(String::as_str).collect();
            let only_arm: BTreeSet<&str> = arm.difference(&x86).map(String::as_str).collect();
            assert!(
                only_x86.is_subset(&x86_only),
                "{name}: only on x86_64: {only_x86:?}"
            );
            assert!(only_arm.is_empty(), "{name}: only on aarch64: {only_arm:?}");
        }
    }

    /// The x86_64 calls that 32-bit ARM EABI names differently: the same operation, with
    /// 64-bit offsets/sizes/stat fields where the 32-bit ABI needs a separate call.
    const ARMV7_NAMES: &[(&str, &str)] = &[
        ("mmap", "mmap2"),
        ("fcntl", "fcntl64"),
        ("lseek", "_llseek"),
        ("fstat", "fstat64"),
        ("newfstatat", "fstatat64"),
        ("ftruncate", "ftruncate64"),
    ];

    /// What 32-bit ARM needs besides, and why (see armv7.json): handlers without SA_SIGINFO
    /// return through `sigreturn`; glibc tries the 64-bit-time calls first and falls back to
    /// the 32-bit-time ones (which keep the x86_64 names) on kernels before 5.1; glibc's
    /// `recv` and `send` are calls of their own there (x86_64 and aarch64 have only
    /// `recvfrom`/`sendto`, which UDP's addressed datagrams need on ARM too).
    const ARMV7_ONLY: &[&str] = &[
        "sigreturn",
        "clock_gettime64",
        "clock_nanosleep_time64",
        "utimensat_time64",
        "recv",
        "send",
    ];

    #[test]
    fn armv7_allows_the_x86_64_calls_under_their_arm_names_and_only_the_listed_extras() {
        let files: Vec<_> = each_file().collect();
        let armv7 = files.iter().find(|f| f.0 == "armv7").unwrap();
        for name in PROFILES_NAMES {
            let x86: BTreeSet<String> = files[0]
                .1
                .syscalls(name)
                .unwrap()
                .into_iter()
                .map(|call| {
                    ARMV7_NAMES
                        .iter()
                        .find(|(x, _)| *x == call)
                        .map_or(call.clone(), |(_, arm)| (*arm).to_owned())
                })
                .collect();
            let arm = armv7.1.syscalls(name).unwrap();
            let missing: Vec<&String> = x86.difference(&arm).collect();
            assert!(missing.is_empty(), "{name}: armv7 lacks {missing:?}");
            let extra: Vec<&String> = arm
                .difference(&x86)
                .filter(|call| !ARMV7_ONLY.contains(&call.as_str()))
                .collect();
            assert!(
                extra.is_empty(),
                "{name}: only on armv7, unexplained: {extra:?}"
            );
        }
        // Conditions too: the same argument restrictions on the renamed calls.
        for name in PROFILES_NAMES {
            let conditions = |file: &ProfileFile, rename: bool| -> BTreeSet<String> {
                file.rules(name)
                    .unwrap()
                    .into_iter()
                    .filter_map(|rule| {
                        let call = if rename {
                            ARMV7_NAMES
                                .iter()
                                .find(|(x, _)| *x == rule.syscall)
                                .map_or(rule.syscall.clone(), |(_, arm)| (*arm).to_owned())
                        } else {
                            rule.syscall.clone()
                        };
                        let args = rule.args?;
                        Some(format!(
                            "{call}: {:?}",
                            args.iter()
                                .map(|c| (c.index, c.len.clone(), c.op.to_string(), c.val))
                                .collect::<Vec<_>>()
                        ))
                    })
                    .collect()
            };
            assert_eq!(
                conditions(&files[0].1, true),
                conditions(&armv7.1, false),
                "{name}"
            );
        }
    }

    /// seccompiler drops an unconditional rule of a call that also has conditional ones; our
    /// generator refuses the mix. No profile may have it.
    #[test]
    fn no_call_has_rules_with_and_without_conditions() {
        for (arch, file, _) in each_file() {
            for name in PROFILES_NAMES {
                let rules = file.rules(name).unwrap();
                for rule in &rules {
                    let kinds: BTreeSet<bool> = rules
                        .iter()
                        .filter(|r| r.syscall == rule.syscall)
                        .map(|r| r.args.is_some())
                        .collect();
                    assert_eq!(kinds.len(), 1, "{arch}/{name}: {}", rule.syscall);
                }
            }
        }
    }

    #[test]
    fn worker_storage_extends_worker() {
        for (arch, file, _) in each_file() {
            let worker = file.syscalls("worker").unwrap();
            let storage = file.syscalls("worker_storage").unwrap();
            assert!(worker.is_subset(&storage), "{arch}");
        }
    }

    /// Both device profiles are the profile without devices plus the same device rules, and
    /// `worker_storage_devices` is exactly the union of its two parents, each rule once.
    #[test]
    fn the_device_profiles_add_the_device_rules_to_worker_and_worker_storage() {
        let key = |r: &Rule| {
            format!(
                "{} {:?}",
                r.syscall,
                r.args.as_ref().map(|a| a
                    .iter()
                    .map(|c| (c.index, c.op.to_string(), c.val))
                    .collect::<Vec<_>>())
            )
        };
        let set = |rules: Vec<Rule>| rules.iter().map(key).collect::<BTreeSet<String>>();
        for (arch, file, _) in each_file() {
            let worker = set(file.rules("worker").unwrap());
            let storage = set(file.rules("worker_storage").unwrap());
            let devices = set(file.rules("worker_devices").unwrap());
            let both_rules = file.rules("worker_storage_devices").unwrap();
            let both = set(both_rules.clone());
            assert!(worker.is_subset(&devices), "{arch}");
            let added: BTreeSet<String> = devices.difference(&worker).cloned().collect();
            assert!(!added.is_empty(), "{arch}");
            let union: BTreeSet<String> = storage.union(&devices).cloned().collect();
            assert_eq!(both, union, "{arch}");
            assert_eq!(both.len(), both_rules.len(), "{arch}: a rule taken twice");
            // No device rule opens anything: every descriptor comes from the supervisor.
            for rule in &added {
                assert!(!rule.starts_with("open"), "{arch}: {rule}");
            }
        }
    }

    /// `worker_network` is `worker_devices` plus exactly the rules the passed sockets and the
    /// tokio I/O driver need, and `worker_storage_network` is exactly the union of
    /// `worker_storage` and `worker_network`, each rule once. Nothing in them makes, binds,
    /// connects or sets listening a socket: the supervisor does that.
    #[test]
    fn the_network_profiles_add_exactly_the_network_rules() {
        let key = |r: &Rule| {
            format!(
                "{}{}|{:?}",
                r.syscall,
                if r.debug_only { " (debug)" } else { "" },
                r.args.as_ref().map(|a| a
                    .iter()
                    .map(|c| (c.index, c.op.to_string(), c.val))
                    .collect::<Vec<_>>())
            )
        };
        let set = |rules: Vec<Rule>| rules.iter().map(key).collect::<BTreeSet<String>>();
        for (arch, file, _) in each_file() {
            let devices = set(file.rules("worker_devices").unwrap());
            let storage = set(file.rules("worker_storage").unwrap());
            let network = set(file.rules("worker_network").unwrap());
            let both_rules = file.rules("worker_storage_network").unwrap();
            let both = set(both_rules.clone());
            assert!(devices.is_subset(&network), "{arch}");
            let added: BTreeSet<&str> = network
                .difference(&devices)
                .map(|rule| rule.split('|').next().unwrap_or_default())
                .collect();
            let (wait, fcntl) = match arch {
                "aarch64" => ("epoll_pwait", "fcntl"),
                "armv7" => ("epoll_wait", "fcntl64"),
                _ => ("epoll_wait", "fcntl"),
            };
            let mut expected: BTreeSet<&str> = [
                wait,
                "epoll_ctl",
                "recvfrom",
                "sendto",
                "accept4",
                "shutdown",
                // TLS for wasi:http https: ring's random values, tokio-rustls's vectored writes.
                "getrandom",
                "writev",
            ]
            .into();
            // tokio's debug assertion that a socket it is given is non-blocking (F_GETFL).
            let debug_check = format!("{fcntl} (debug)");
            expected.insert(&debug_check);
            if arch == "armv7" {
                expected.extend(["recv", "send"]);
            }
            assert_eq!(added, expected, "{arch}");
            let union: BTreeSet<String> = storage.union(&network).cloned().collect();
            assert_eq!(both, union, "{arch}");
            assert_eq!(both.len(), both_rules.len(), "{arch}: a rule taken twice");
            for call in [
                "socket",
                "socketpair",
                "connect",
                "bind",
                "listen",
                "accept",
            ] {
                for name in NETWORK_PROFILES {
                    assert!(
                        !file.syscalls(name).unwrap().contains(call),
                        "{arch}/{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn extends_takes_a_list_and_refuses_cycles() {
        let file = parse(
            "x86_64",
            r#"{"arch": "x86_64", "comment": "c", "profiles": {
                "a": {"comment": "c", "syscalls": [{"syscall": "read", "comment": "reading"}]},
                "b": {"comment": "c", "extends": "a", "syscalls": [{"syscall": "write", "comment": "writing"}]},
                "c": {"comment": "c", "extends": ["a", "b"], "syscalls": [{"syscall": "read", "comment": "again"}]},
                "d": {"comment": "c", "extends": ["e"], "syscalls": []},
                "e": {"comment": "c", "extends": "d", "syscalls": []}
            }}"#,
        )
        .unwrap();
        let calls: Vec<String> = file
            .rules("c")
            .unwrap()
            .into_iter()
            .map(|r| r.syscall)
            .collect();
        assert_eq!(calls, ["read", "write"]);
        assert!(matches!(file.rules("d"), Err(SeccompError::BadFile { .. })));
        assert!(matches!(
            file.rules("nope"),
            Err(SeccompError::NoSuchProfile { .. })
        ));
    }

    #[test]
    fn a_release_app_worker_allows_at_most_17_syscalls() {
        // The runtime issue's target for the steady-state allow-list of an app worker without
        // storage was 16; the 17th is `futex`: since tokio 1.54 a component's sleep parks on a
        // condition variable, while a preview-1 module's lone clock poll still sleeps with
        // `clock_nanosleep` (docs/sandbox.md).
        // armv7 needs its time64 and sigreturn twins on top (docs/sandbox.md).
        for (arch, file, _) in each_file().filter(|(arch, ..)| *arch != "armv7") {
            let release = file.syscalls_for_build("worker", false).unwrap();
            assert!(
                release.len() <= 17,
                "{arch}: {} in {release:?}",
                release.len()
            );
            let debug = file.syscalls_for_build("worker", true).unwrap();
            assert!(release.is_subset(&debug));
            let only_debug: Vec<_> = debug.difference(&release).collect();
            assert_eq!(only_debug, ["fcntl"], "{arch}");
        }
    }

    #[test]
    fn the_build_target_has_a_profile() {
        for profile in [
            SeccompProfile::Worker,
            SeccompProfile::WorkerStorage,
            SeccompProfile::WorkerDevices,
            SeccompProfile::WorkerStorageDevices,
            SeccompProfile::WorkerNetwork,
            SeccompProfile::WorkerStorageNetwork,
            SeccompProfile::Compiler,
        ] {
            let compiled = compile_for_this_arch(profile).unwrap();
            assert!(compiled.syscalls > 5);
            assert!(!profile_syscalls(profile).unwrap().is_empty());
        }
    }
}
