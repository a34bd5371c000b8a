//! Our own seccomp filter generator, for architectures seccompiler cannot target (32-bit ARM).
//!
//! It compiles the same rules (`seccomp.rs`' `Rule`/`Condition`, i.e. seccompiler's JSON rule
//! format) with the same meaning: a syscall is allowed when any of its rules matches, a rule
//! matches when all of its conditions hold, a rule without conditions always matches; anything
//! else, and any other architecture, kills the process. It is parametric in the architecture
//! ([`Arch`]: audit value, argument width, syscall table), so the tests can compile the x86_64
//! profiles with it and check it decides exactly as seccompiler's program does.
//!
//! The program (classic BPF over `struct seccomp_data`):
//!
//! ```text
//!        ld  [arch]             ; offset 4
//!        jeq AUDIT_ARCH, ok     ; anything else:
//!        ret KILL_PROCESS
//! ok:    ld  [nr]               ; offset 0
//! s1:    jeq nr1, body1, s2     ; one block per allowed syscall, ascending numbers
//! body1: <rule 1: each condition falls through when it holds, else jumps to rule 2>
//!        ret ALLOW
//!        <rule 2 …>  ret ALLOW
//!        ret KILL_PROCESS       ; no rule matched
//! s2:    jeq nr2, …             ; (A still holds nr: only the jeq's above touched it)
//!        …
//!        ret KILL_PROCESS       ; not an allowed syscall
//! ```
//!
//! Arguments are read as two 32-bit words from `seccomp_data.args[i]` (a `u64`); only
//! little-endian architectures are supported (low word first), which the audit value's
//! `__AUDIT_ARCH_LE` bit must say. A `dword` condition compares the low word; on a 32-bit
//! architecture it also requires the high word to be 0 — the kernel zero-extends 32-bit
//! registers, so a set high word cannot come from a real call, and the filter refuses it rather
//! than ignore it. A `qword` condition compares all 64 bits. Operators: `eq`, `ne`, `gt`, `ge`,
//! `lt`, `le` (unsigned) and `{"masked_eq": mask}`.

use std::collections::BTreeMap;

use seccompiler::sock_filter;

use super::{Condition, Rule, SeccompError};

/// `SECCOMP_RET_ALLOW` (`linux/seccomp.h`).
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_KILL_PROCESS` (`linux/seccomp.h`).
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// `AUDIT_ARCH_ARM` (`linux/audit.h`): `EM_ARM` (40) | `__AUDIT_ARCH_LE`. Big-endian ARM
/// (`AUDIT_ARCH_ARMEB`, 40) lacks the LE bit and is refused by the filter.
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// `__AUDIT_ARCH_LE`.
const AUDIT_ARCH_LE: u32 = 0x4000_0000;

/// `BPF_MAXINSNS` (`linux/bpf_common.h`): the kernel refuses longer programs.
const MAX_INSTRUCTIONS: usize = 4096;

// Classic BPF opcodes (`linux/bpf_common.h`), combined as the kernel's seccomp checker accepts.
/// `BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20)`: A = 32-bit word of `seccomp_data` at k.
pub(crate) const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU (0x04) | BPF_AND (0x50) | BPF_K (0x00)`: A &= k.
pub(crate) const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP (0x05) | BPF_JEQ (0x10) | BPF_K`: A == k.
pub(crate) const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT (0x20) | BPF_K`: A > k, unsigned.
pub(crate) const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE (0x30) | BPF_K`: A >= k, unsigned.
pub(crate) const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET (0x06) | BPF_K`: return k.
pub(crate) const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64
/// args[6]; }`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;
/// Highest argument index (`args[5]`).
const MAX_ARG: u8 = 5;

/// How wide a syscall argument register is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 32-bit registers (arm): the high word of every argument is 0.
    Bits32,
    /// 64-bit registers (x86_64, aarch64): only the tests target one (x86_64, against
    /// seccompiler); production uses seccompiler there.
    #[cfg_attr(not(all(test, target_arch = "x86_64")), allow(dead_code))]
    Bits64,
}

/// An architecture the generator can target.
#[derive(Debug)]
pub(crate) struct Arch<'a> {
    /// As in the profile file (`armv7`).
    pub(crate) name: &'a str,
    /// What the kernel puts in `seccomp_data.arch` for this ABI.
    pub(crate) audit_arch: u32,
    pub(crate) width: Width,
    /// `(name, number)` of every syscall a profile may name.
    pub(crate) syscalls: &'a [(&'a str, u32)],
}

/// 32-bit ARM, EABI, little-endian: the armv7 (Cortex-A7) devices.
pub(crate) const ARM_EABI: Arch<'static> = Arch {
    name: "armv7",
    audit_arch: AUDIT_ARCH_ARM,
    width: Width::Bits32,
    syscalls: super::arm_eabi::SYSCALLS,
};

impl Arch<'_> {
    fn number(&self, name: &str) -> Option<u32> {
        self.syscalls
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, nr)| *nr)
    }
}

/// A comparison of a condition, parsed from the rule's `op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    MaskedEq(u64),
}

/// One checked condition of a rule.
#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u8,
    qword: bool,
    op: Op,
    value: u64,
}

/// A jump target: the next instruction, or a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum To {
    Next,
    Label(usize),
}

/// One instruction with symbolic jump targets, or a label's position.
#[derive(Clone, Copy, Debug)]
enum Ins {
    Load(u32),
    And(u32),
    Jump { code: u16, k: u32, yes: To, no: To },
    Ret(u32),
    Label(usize),
}

/// Emits instructions with labels, then resolves the labels to the 8-bit forward offsets of
/// classic BPF.
#[derive(Default)]
struct Asm {
    code: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, label: usize) {
        self.code.push(Ins::Label(label));
    }
    fn load(&mut self, offset: u32) {
        self.code.push(Ins::Load(offset));
    }
    fn and(&mut self, mask: u32) {
        self.code.push(Ins::And(mask));
    }
    fn jump(&mut self, code: u16, k: u32, yes: To, no: To) {
        self.code.push(Ins::Jump { code, k, yes, no });
    }
    fn ret(&mut self, value: u32) {
        self.code.push(Ins::Ret(value));
    }

    fn finish(self) -> Result<Vec<sock_filter>, String> {
        let mut at = vec![usize::MAX; self.labels];
        let mut index = 0;
        for ins in &self.code {
            match ins {
                Ins::Label(label) => at[*label] = index,
                _ => index += 1,
            }
        }
        if index > MAX_INSTRUCTIONS {
            return Err(format!(
                "{index} instructions, the kernel takes at most {MAX_INSTRUCTIONS}"
            ));
        }
        let mut out = Vec::with_capacity(index);
        for ins in &self.code {
            let here = out.len();
            let offset = |to: To| -> Result<u8, String> {
                match to {
                    To::Next => Ok(0),
                    To::Label(label) => {
                        let target = at.get(label).copied().unwrap_or(usize::MAX);
                        let distance = target
                            .checked_sub(here + 1)
                            .ok_or_else(|| format!("label {label} is not after its jump"))?;
                        u8::try_from(distance)
                            .map_err(|_| format!("a jump of {distance} instructions (max 255)"))
                    }
                }
            };
            out.push(match *ins {
                Ins::Label(_) => continue,
                Ins::Load(k) => stmt(LD_W_ABS, k),
                Ins::And(k) => stmt(ALU_AND_K, k),
                Ins::Ret(k) => stmt(RET_K, k),
                Ins::Jump { code, k, yes, no } => sock_filter {
                    code,
                    jt: offset(yes)?,
                    jf: offset(no)?,
                    k,
                },
            });
        }
        Ok(out)
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Compiles `rules` for `arch`: allow what a rule matches, kill the process otherwise.
pub(crate) fn compile(
    arch: &Arch<'_>,
    profile: &str,
    rules: &[Rule],
) -> Result<Vec<sock_filter>, SeccompError> {
    let err = |message: String| SeccompError::Compile {
        arch: arch.name.to_owned(),
        profile: profile.to_owned(),
        message,
    };
    if arch.audit_arch & AUDIT_ARCH_LE == 0 {
        return Err(err(format!(
            "audit arch {:#x} is big-endian; only little-endian layouts are supported",
            arch.audit_arch
        )));
    }

    // Rules per syscall number, in ascending order. `None`: a rule without conditions, so the
    // call is allowed whatever its arguments.
    let mut by_nr: BTreeMap<u32, Option<Vec<Vec<Cond>>>> = BTreeMap::new();
    for rule in rules {
        let nr = arch.number(&rule.syscall).ok_or_else(|| {
            err(format!(
                "unknown syscall {:?} on {} (not in its syscall table)",
                rule.syscall, arch.name
            ))
        })?;
        let conditions = match &rule.args {
            None => None,
            Some(args) if args.is_empty() => {
                return Err(err(format!(
                    "{}: an empty condition list (omit `args` to allow every call)",
                    rule.syscall
                )));
            }
            Some(args) => Some(
                args.iter()
                    .map(|c| parse_condition(c).map_err(|m| err(format!("{}: {m}", rule.syscall))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        // A call with rules both with and without conditions is refused: the unconditional
        // rule would make the others pointless, and seccompiler silently drops it instead
        // (allowing less than the file says). Either way the file would mislead its reviewer.
        let mixed = || {
            err(format!(
                "{} has rules both with and without argument conditions",
                rule.syscall
            ))
        };
        match (by_nr.get_mut(&nr), conditions) {
            (None, conditions) => {
                by_nr.insert(nr, conditions.map(|c| vec![c]));
            }
            (Some(Some(list)), Some(conditions)) => list.push(conditions),
            (Some(None), None) => {}
            (Some(_), _) => return Err(mixed()),
        }
    }

    let mut asm = Asm::default();
    let arch_ok = asm.label();
    asm.load(DATA_ARCH);
    asm.jump(JMP_JEQ_K, arch.audit_arch, To::Label(arch_ok), To::Next);
    asm.ret(RET_KILL_PROCESS);
    asm.place(arch_ok);
    asm.load(DATA_NR);
    for (nr, rules) in &by_nr {
        let next_syscall = asm.label();
        asm.jump(JMP_JEQ_K, *nr, To::Next, To::Label(next_syscall));
        match rules {
            None => asm.ret(RET_ALLOW),
            Some(rules) => {
                for conditions in rules {
                    let next_rule = asm.label();
                    for cond in conditions {
                        condition(&mut asm, arch.width, *cond, next_rule);
                    }
                    asm.ret(RET_ALLOW);
                    asm.place(next_rule);
                }
                asm.ret(RET_KILL_PROCESS);
            }
        }
        asm.place(next_syscall);
    }
    asm.ret(RET_KILL_PROCESS);
    asm.finish().map_err(err)
}

/// A condition of the profile file, checked.
fn parse_condition(c: &Condition) -> Result<Cond, String> {
    if c.index > MAX_ARG {
        return Err(format!("argument index {} (max {MAX_ARG})", c.index));
    }
    let qword = match c.len.as_str() {
        "dword" => false,
        "qword" => true,
        other => return Err(format!("argument type {other:?} (dword or qword)")),
    };
    let op = match &c.op {
        serde_json::Value::String(s) => match s.as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("operator {other:?}")),
        },
        serde_json::Value::Object(map) if map.len() == 1 => match map.get("masked_eq") {
            Some(mask) => Op::MaskedEq(
                mask.as_u64()
                    .ok_or_else(|| format!("masked_eq mask {mask} is not a u64"))?,
            ),
            None => return Err(format!("operator {}", c.op)),
        },
        other => return Err(format!("operator {other}")),
    };
    if !qword && c.val > u64::from(u32::MAX) {
        return Err(format!(
            "dword condition with the 64-bit value {:#x}",
            c.val
        ));
    }
    if let (false, Op::MaskedEq(mask)) = (qword, op)
        && mask > u64::from(u32::MAX)
    {
        return Err(format!("dword condition with the 64-bit mask {mask:#x}"));
    }
    Ok(Cond {
        index: c.index,
        qword,
        op,
        value: c.val,
    })
}

fn low(value: u64) -> u32 {
    (value & u64::from(u32::MAX)) as u32
}

fn high(value: u64) -> u32 {
    (value >> 32) as u32
}

/// Emits one condition: falls through when it holds, jumps to `fail` when it does not.
fn condition(asm: &mut Asm, width: Width, cond: Cond, fail: usize) {
    let Cond {
        index,
        qword,
        op,
        value,
    } = cond;
    let lo = DATA_ARGS + 8 * u32::from(index);
    let hi = lo + 4;
    let fail = To::Label(fail);
    if !qword {
        if width == Width::Bits32 {
            asm.load(hi);
            asm.jump(JMP_JEQ_K, 0, To::Next, fail);
        }
        asm.load(lo);
        let v = low(value);
        match op {
            Op::Eq => asm.jump(JMP_JEQ_K, v, To::Next, fail),
            Op::Ne => asm.jump(JMP_JEQ_K, v, fail, To::Next),
            Op::Gt => asm.jump(JMP_JGT_K, v, To::Next, fail),
            Op::Ge => asm.jump(JMP_JGE_K, v, To::Next, fail),
            Op::Lt => asm.jump(JMP_JGE_K, v, fail, To::Next),
            Op::Le => asm.jump(JMP_JGT_K, v, fail, To::Next),
            Op::MaskedEq(mask) => {
                asm.and(low(mask));
                asm.jump(JMP_JEQ_K, v & low(mask), To::Next, fail);
            }
        }
        return;
    }
    // 64 bits: decide on the high word where it decides, else on the low word.
    let pass_label = asm.label();
    let pass = To::Label(pass_label);
    let (vh, vl) = (high(value), low(value));
    asm.load(hi);
    match op {
        Op::Eq => {
            asm.jump(JMP_JEQ_K, vh, To::Next, fail);
            asm.load(lo);
            asm.jump(JMP_JEQ_K, vl, pass, fail);
        }
        Op::Ne => {
            asm.jump(JMP_JEQ_K, vh, To::Next, pass);
            asm.load(lo);
            asm.jump(JMP_JEQ_K, vl, fail, pass);
        }
        Op::Gt | Op::Ge => {
            asm.jump(JMP_JGT_K, vh, pass, To::Next);
            asm.jump(JMP_JEQ_K, vh, To::Next, fail);
            asm.load(lo);
            let code = if op == Op::Gt { JMP_JGT_K } else { JMP_JGE_K };
            asm.jump(code, vl, pass, fail);
        }
        Op::Lt | Op::Le => {
            asm.jump(JMP_JGE_K, vh, To::Next, pass);
            asm.jump(JMP_JEQ_K, vh, To::Next, fail);
            asm.load(lo);
            // lt: fail when lo >= vl; le: fail when lo > vl.
            let code = if op == Op::Lt { JMP_JGE_K } else { JMP_JGT_K };
            asm.jump(code, vl, fail, pass);
        }
        Op::MaskedEq(mask) => {
            asm.and(high(mask));
            asm.jump(JMP_JEQ_K, vh & high(mask), To::Next, fail);
            asm.load(lo);
            asm.and(low(mask));
            asm.jump(JMP_JEQ_K, vl & low(mask), pass, fail);
        }
    }
    asm.place(pass_label);
}

#[cfg(test)]
mod tests {
    //! The generator is proven by running its programs: a small classic-BPF interpreter (below,
    //! with the kernel's seccomp checks on loads and jumps) decides `seccomp_data` inputs, and
    //! its decisions are compared with a direct evaluation of the rules, with explicit cases,
    //! and — for x86_64 — with seccompiler's program for the same profile.

    use std::collections::BTreeSet;

    use super::*;
    use crate::seccomp::tests::{DENIED, FILES, PROFILES_NAMES};
    use crate::seccomp::{ProfileFile, parse};

    /// `AUDIT_ARCH_X86_64`, `AUDIT_ARCH_AARCH64` (`linux/audit.h`).
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
    /// `AUDIT_ARCH_ARMEB`: big-endian ARM.
    const AUDIT_ARCH_ARMEB: u32 = 0x28;
    const HIGH: u64 = 1 << 32;
    /// `BPF_JMP | BPF_JA`: pc += k (seccompiler emits it; our generator does not).
    const JMP_JA: u16 = 0x05;

    /// `struct seccomp_data`, as the kernel lays it out on a little-endian machine.
    #[derive(Clone, Copy, Debug)]
    struct Data {
        nr: u32,
        arch: u32,
        args: [u64; 6],
    }

    impl Data {
        fn call(arch: u32, nr: u32, args: &[u64]) -> Data {
            let mut all = [0u64; 6];
            all[..args.len()].copy_from_slice(args);
            Data {
                nr,
                arch,
                args: all,
            }
        }

        fn bytes(&self) -> [u8; 64] {
            let mut out = [0u8; 64];
            out[0..4].copy_from_slice(&self.nr.to_le_bytes());
            out[4..8].copy_from_slice(&self.arch.to_le_bytes());
            out[8..16].copy_from_slice(&0x1234_5678u64.to_le_bytes());
            for (i, arg) in self.args.iter().enumerate() {
                out[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
            }
            out
        }
    }

    /// Checks a program as the kernel does before accepting it (length, known opcodes, aligned
    /// in-bounds loads, forward jumps inside the program, a return at the end).
    fn check(program: &[sock_filter]) {
        assert!(!program.is_empty() && program.len() <= MAX_INSTRUCTIONS);
        for (pc, ins) in program.iter().enumerate() {
            match ins.code {
                LD_W_ABS => assert!(ins.k % 4 == 0 && ins.k < 64, "load of {} at {pc}", ins.k),
                ALU_AND_K | RET_K => {}
                JMP_JA => {
                    let target = usize::try_from(ins.k).unwrap() + pc + 1;
                    assert!(target < program.len(), "jump out of the program at {pc}");
                }
                JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                    let last = pc + 1 + usize::from(ins.jt.max(ins.jf));
                    assert!(last < program.len(), "jump out of the program at {pc}");
                }
                other => panic!("opcode {other:#x} at {pc}"),
            }
        }
        assert_eq!(program.last().map(|i| i.code), Some(RET_K));
    }

    /// Runs a classic-BPF seccomp program (the subset our generator and seccompiler emit).
    fn run(program: &[sock_filter], data: &Data) -> u32 {
        let bytes = data.bytes();
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = &program[pc];
            pc += 1;
            let jump = |taken: bool| usize::from(if taken { ins.jt } else { ins.jf });
            match ins.code {
                LD_W_ABS => {
                    let k = usize::try_from(ins.k).unwrap();
                    assert!(
                        k % 4 == 0 && k + 4 <= 64,
                        "misaligned or out-of-bounds load {k}"
                    );
                    a = u32::from_le_bytes(bytes[k..k + 4].try_into().unwrap());
                }
                ALU_AND_K => a &= ins.k,
                JMP_JA => pc += usize::try_from(ins.k).unwrap(),
                JMP_JEQ_K => pc += jump(a == ins.k),
                JMP_JGT_K => pc += jump(a > ins.k),
                JMP_JGE_K => pc += jump(a >= ins.k),
                RET_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    /// The rules' meaning, evaluated directly: what the program must decide.
    fn expected(rules: &[Rule], arch: &Arch<'_>, data: &Data) -> u32 {
        if data.arch != arch.audit_arch {
            return RET_KILL_PROCESS;
        }
        let holds = |c: &Condition| {
            let arg = data.args[usize::from(c.index)];
            let qword = c.len == "qword";
            if !qword && arch.width == Width::Bits32 && arg >> 32 != 0 {
                return false;
            }
            let (arg, val) = if qword {
                (arg, c.val)
            } else {
                (arg & 0xffff_ffff, c.val & 0xffff_ffff)
            };
            match &c.op {
                serde_json::Value::String(op) => match op.as_str() {
                    "eq" => arg == val,
                    "ne" => arg != val,
                    "gt" => arg > val,
                    "ge" => arg >= val,
                    "lt" => arg < val,
                    "le" => arg <= val,
                    other => panic!("op {other}"),
                },
                serde_json::Value::Object(m) => {
                    let mut mask = m["masked_eq"].as_u64().unwrap();
                    if !qword {
                        mask &= 0xffff_ffff;
                    }
                    arg & mask == val & mask
                }
                other => panic!("op {other}"),
            }
        };
        let allowed = rules.iter().any(|rule| {
            arch.number(&rule.syscall) == Some(data.nr) && rule.args.iter().flatten().all(holds)
        });
        if allowed { RET_ALLOW } else { RET_KILL_PROCESS }
    }

    fn armv7() -> ProfileFile {
        let (_, text) = FILES.iter().find(|(arch, _)| *arch == "armv7").unwrap();
        parse("armv7", text).unwrap()
    }

    /// Argument values around every condition's boundaries, with and without a high word.
    fn interesting_args(rules: &[Rule]) -> Vec<u64> {
        let mut values: BTreeSet<u64> = [0, 1, 2, 3, 4, 5, 0x5401, u64::from(u32::MAX), u64::MAX]
            .into_iter()
            .collect();
        for cond in rules.iter().flat_map(|r| r.args.iter().flatten()) {
            for v in [cond.val.wrapping_sub(1), cond.val, cond.val.wrapping_add(1)] {
                values.insert(v);
                values.insert(v & 0xffff_ffff);
                values.insert(v | HIGH);
                values.insert(v ^ 0xffff_0000_0000_0000);
            }
        }
        values.into_iter().collect()
    }

    /// Every syscall number worth trying on `arch`: 0..=500, the table, ARM's private calls
    /// (0x0f0000+), the OABI base, x32's bit, and the extremes.
    fn numbers(arch: &Arch<'_>) -> Vec<u32> {
        let mut nrs: BTreeSet<u32> = (0..=500).collect();
        nrs.extend(arch.syscalls.iter().map(|(_, nr)| *nr));
        nrs.extend(0x0f_0000..=0x0f_0007);
        nrs.extend([0x90_0000, 0x90_0003, 0x4000_0000, 0x4000_0001, u32::MAX]);
        nrs.into_iter().collect()
    }

    /// Compares the program with the rules' meaning over every number and, for the syscalls
    /// with conditions, every interesting value of every argument they test.
    fn assert_decides_as_the_rules(arch: &Arch<'_>, rules: &[Rule], program: &[sock_filter]) {
        check(program);
        let values = interesting_args(rules);
        for audit in [
            arch.audit_arch,
            AUDIT_ARCH_X86_64,
            AUDIT_ARCH_AARCH64,
            AUDIT_ARCH_ARMEB,
            0,
        ] {
            for nr in numbers(arch) {
                let mut cases = vec![
                    Data::call(audit, nr, &[]),
                    Data::call(audit, nr, &[u64::MAX; 6]),
                ];
                let tested: BTreeSet<u8> = rules
                    .iter()
                    .filter(|r| arch.number(&r.syscall) == Some(nr))
                    .flat_map(|r| r.args.iter().flatten().map(|c| c.index))
                    .collect();
                for index in tested {
                    for v in &values {
                        let mut args = [3u64, 1, 0, 0, 0, 0];
                        args[usize::from(index)] = *v;
                        cases.push(Data::call(audit, nr, &args));
                    }
                }
                for data in cases {
                    assert_eq!(
                        run(program, &data),
                        expected(rules, arch, &data),
                        "{}: {data:x?}",
                        arch.name
                    );
                }
            }
        }
    }

    fn arm_nr(name: &str) -> u32 {
        ARM_EABI.number(name).unwrap()
    }

    #[test]
    fn every_armv7_profile_decides_exactly_as_its_rules() {
        let file = armv7();
        for name in PROFILES_NAMES {
            let rules = file.rules(name).unwrap();
            let program = compile(&ARM_EABI, name, &rules).unwrap();
            assert_decides_as_the_rules(&ARM_EABI, &rules, &program);
        }
    }

    #[test]
    fn armv7_worker_cases_spelled_out() {
        let rules = armv7().rules("worker").unwrap();
        let program = compile(&ARM_EABI, "worker", &rules).unwrap();
        let arm = |name: &str, args: &[u64]| {
            run(&program, &Data::call(AUDIT_ARCH_ARM, arm_nr(name), args))
        };
        assert_eq!(
            arm("mmap2", &[0, 4096, 3, 0x22, u64::from(u32::MAX), 0]),
            RET_ALLOW
        );
        assert_eq!(arm("write", &[1, 0, 5]), RET_ALLOW);
        assert_eq!(arm("sigreturn", &[]), RET_ALLOW);
        assert_eq!(arm("recvmsg", &[3, 0, 0]), RET_ALLOW);
        assert_eq!(
            arm("recvmsg", &[4, 0, 0]),
            RET_KILL_PROCESS,
            "another descriptor"
        );
        assert_eq!(
            arm("recvmsg", &[3 | HIGH, 0, 0]),
            RET_KILL_PROCESS,
            "high word set"
        );
        assert_eq!(arm("fcntl64", &[5, 1]), RET_ALLOW, "F_GETFD");
        assert_eq!(
            arm("fcntl64", &[5, 4]),
            RET_KILL_PROCESS,
            "F_SETFL: storage profile only"
        );
        assert_eq!(
            arm("fcntl64", &[5, 1 | HIGH]),
            RET_KILL_PROCESS,
            "high word set"
        );
        for denied in [
            "socket", "openat", "clone", "execve", "kill", "ptrace", "setuid32",
        ] {
            assert_eq!(arm(denied, &[]), RET_KILL_PROCESS, "{denied}");
        }
        // The same call from another ABI is refused before its number is looked at.
        let mmap2 = arm_nr("mmap2");
        for audit in [AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARMEB] {
            assert_eq!(
                run(&program, &Data::call(audit, mmap2, &[])),
                RET_KILL_PROCESS
            );
        }
        // ARM's private calls (cacheflush, set_tls) and OABI numbers are not allowed.
        for nr in [0x0f_0002, 0x0f_0005, 0x90_0000 + 4] {
            assert_eq!(
                run(&program, &Data::call(AUDIT_ARCH_ARM, nr, &[])),
                RET_KILL_PROCESS
            );
        }
        let storage = armv7().rules("worker_storage").unwrap();
        let storage = compile(&ARM_EABI, "worker_storage", &storage).unwrap();
        let fcntl = |cmd| {
            run(
                &storage,
                &Data::call(AUDIT_ARCH_ARM, arm_nr("fcntl64"), &[5, cmd]),
            )
        };
        assert_eq!(fcntl(4), RET_ALLOW, "F_SETFL");
        assert_eq!(fcntl(1030), RET_ALLOW, "F_DUPFD_CLOEXEC");
        assert_eq!(fcntl(0), RET_KILL_PROCESS, "F_DUPFD");
        assert_eq!(fcntl(9), RET_KILL_PROCESS, "F_SETOWN");
    }

    /// Every denied call the ARM table knows is killed by every armv7 profile; the ones it does
    /// not know do not exist on 32-bit ARM EABI (and so cannot be compiled into a filter).
    #[test]
    fn every_denied_call_is_killed_on_armv7() {
        let file = armv7();
        let mut unknown = Vec::new();
        for name in PROFILES_NAMES {
            let program = compile(&ARM_EABI, name, &file.rules(name).unwrap()).unwrap();
            for denied in DENIED {
                match ARM_EABI.number(denied) {
                    Some(nr) => assert_eq!(
                        run(
                            &program,
                            &Data::call(AUDIT_ARCH_ARM, nr, &[3, 1, 0, 0, 0, 0])
                        ),
                        RET_KILL_PROCESS,
                        "{name} lets {denied} through"
                    ),
                    None => unknown.push(*denied),
                }
            }
        }
        unknown.sort_unstable();
        unknown.dedup();
        assert_eq!(unknown, ["ioperm", "iopl", "memfd_secret", "modify_ldt"]);
    }

    fn rule(syscall: &str, args: Option<Vec<(u8, &str, serde_json::Value, u64)>>) -> Rule {
        Rule {
            syscall: syscall.to_owned(),
            args: args.map(|conds| {
                conds
                    .into_iter()
                    .map(|(index, len, op, val)| Condition {
                        index,
                        len: len.to_owned(),
                        op,
                        val,
                        comment: "test".to_owned(),
                    })
                    .collect()
            }),
            comment: "a test rule".to_owned(),
            debug_only: false,
        }
    }

    /// A profile using every operator in both widths, several rules per call, two conditions
    /// in one rule, and a repeated unconditional rule.
    fn every_operator() -> Vec<Rule> {
        use serde_json::json;
        let v = 0x0000_0001_0000_5401u64;
        let mut rules = Vec::new();
        for (i, (syscall, len)) in [("read", "dword"), ("write", "qword")]
            .into_iter()
            .enumerate()
        {
            let val = if len == "dword" { v & 0xffff_ffff } else { v };
            for op in ["eq", "ne", "gt", "ge", "lt", "le"] {
                rules.push(rule(
                    syscall,
                    Some(vec![(0, len, json!(op), val + u64::from(i == 0))]),
                ));
            }
            rules.push(rule(
                syscall,
                Some(vec![(2, len, json!({"masked_eq": 0xff00_0000_ff00u64 & if len == "dword" { 0xffff_ffff } else { u64::MAX }}), val)]),
            ));
        }
        rules.push(rule(
            "ioctl",
            Some(vec![
                (0, "dword", json!("eq"), 3),
                (1, "dword", json!("eq"), 0x5401),
            ]),
        ));
        rules.push(rule("ioctl", Some(vec![(1, "qword", json!("eq"), 0x5413)])));
        rules.push(rule("close", None));
        rules.push(rule("close", None));
        rules
    }

    #[test]
    fn every_operator_decides_as_the_rules_on_armv7() {
        let arch = Arch {
            name: "armv7",
            audit_arch: AUDIT_ARCH_ARM,
            width: Width::Bits32,
            syscalls: &[("read", 3), ("write", 4), ("close", 6), ("ioctl", 54)],
        };
        let rules = every_operator();
        let program = compile(&arch, "test", &rules).unwrap();
        assert_decides_as_the_rules(&arch, &rules, &program);
        let ioctl = |args: &[u64]| run(&program, &Data::call(AUDIT_ARCH_ARM, 54, args));
        assert_eq!(ioctl(&[3, 0x5401]), RET_ALLOW, "TCGETS on fd 3");
        assert_eq!(ioctl(&[4, 0x5401]), RET_KILL_PROCESS, "TCGETS on fd 4");
        assert_eq!(ioctl(&[3, 0x5402]), RET_KILL_PROCESS, "TCSETS");
        assert_eq!(
            ioctl(&[3, 0x5401 | HIGH]),
            RET_KILL_PROCESS,
            "high word set"
        );
        assert_eq!(ioctl(&[9, 0x5413]), RET_ALLOW, "TIOCGWINSZ, any fd");
    }

    #[test]
    fn what_cannot_be_compiled_is_refused() {
        use serde_json::json;
        let refused = |rules: Vec<Rule>| compile(&ARM_EABI, "test", &rules).is_err();
        assert!(refused(vec![rule("no_such_call", None)]));
        assert!(refused(vec![rule("mmap", None)]), "OABI only on ARM");
        assert!(
            refused(vec![rule("write", Some(vec![]))]),
            "empty condition list"
        );
        let conditional = rule("write", Some(vec![(0, "dword", json!("eq"), 1)]));
        assert!(
            refused(vec![conditional.clone(), rule("write", None)]),
            "mixed rules"
        );
        assert!(
            refused(vec![rule("write", None), conditional]),
            "mixed rules"
        );
        assert!(refused(vec![rule(
            "write",
            Some(vec![(6, "dword", json!("eq"), 1)])
        )]));
        assert!(refused(vec![rule(
            "write",
            Some(vec![(0, "word", json!("eq"), 1)])
        )]));
        assert!(refused(vec![rule(
            "write",
            Some(vec![(0, "dword", json!("between"), 1)])
        )]));
        assert!(refused(vec![rule(
            "write",
            Some(vec![(0, "dword", json!("eq"), HIGH)])
        )]));
        let big_endian = Arch {
            name: "armeb",
            audit_arch: AUDIT_ARCH_ARMEB,
            width: Width::Bits32,
            syscalls: &[("write", 4)],
        };
        assert!(compile(&big_endian, "test", &[rule("write", None)]).is_err());
    }

    /// The ARM table against the kernel's own numbers: `asm/unistd-eabi.h` from Debian's
    /// `linux-libc-dev-armhf-cross` (`cargo xtask cross` installs it and runs this test; the
    /// path can be overridden with `WARDEN_ARM_UNISTD_H`).
    #[test]
    #[ignore = "needs the armhf cross headers; run by `cargo xtask cross`"]
    fn arm_table_matches_the_kernel_headers() {
        let path = std::env::var("WARDEN_ARM_UNISTD_H")
            .unwrap_or_else(|_| "/usr/arm-linux-gnueabihf/include/asm/unistd-eabi.h".into());
        let header = std::fs::read_to_string(&path).unwrap();
        let mut checked = 0;
        for (name, nr) in ARM_EABI.syscalls {
            let define = format!("#define __NR_{name} (__NR_SYSCALL_BASE + {nr})");
            let named = format!("#define __NR_{name} ");
            if header.lines().any(|l| l.trim() == define) {
                checked += 1;
            } else {
                assert!(
                    !header.contains(&named)
                        && crate::seccomp::arm_eabi::NEWER_THAN_6_1.contains(name),
                    "{name} = {nr} disagrees with {path}"
                );
            }
        }
        assert!(
            checked + crate::seccomp::arm_eabi::NEWER_THAN_6_1.len() >= ARM_EABI.syscalls.len()
        );
        for absent in ["mmap", "socketcall", "ipc", "newfstatat", "memfd_secret"] {
            assert!(
                !header.contains(&format!("#define __NR_{absent} ")),
                "{absent}"
            );
        }
    }

    /// The x86_64 numbers of the calls the tests use, from the libc crate (itself generated
    /// from the kernel's headers): an independent table for our generator.
    #[cfg(target_arch = "x86_64")]
    const X86_64: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("close", libc::SYS_close),
        ("fstat", libc::SYS_fstat),
        ("lseek", libc::SYS_lseek),
        ("mmap", libc::SYS_mmap),
        ("mprotect", libc::SYS_mprotect),
        ("munmap", libc::SYS_munmap),
        ("brk", libc::SYS_brk),
        ("rt_sigreturn", libc::SYS_rt_sigreturn),
        ("ioctl", libc::SYS_ioctl),
        ("pread64", libc::SYS_pread64),
        ("pwrite64", libc::SYS_pwrite64),
        ("mremap", libc::SYS_mremap),
        ("setitimer", libc::SYS_setitimer),
        ("sendmsg", libc::SYS_sendmsg),
        ("recvmsg", libc::SYS_recvmsg),
        ("fcntl", libc::SYS_fcntl),
        ("fsync", libc::SYS_fsync),
        ("fdatasync", libc::SYS_fdatasync),
        ("ftruncate", libc::SYS_ftruncate),
        ("fchdir", libc::SYS_fchdir),
        ("sigaltstack", libc::SYS_sigaltstack),
        ("getdents64", libc::SYS_getdents64),
        ("ppoll", libc::SYS_ppoll),
        ("restart_syscall", libc::SYS_restart_syscall),
        ("clock_gettime", libc::SYS_clock_gettime),
        ("clock_nanosleep", libc::SYS_clock_nanosleep),
        ("futex", libc::SYS_futex),
        ("exit_group", libc::SYS_exit_group),
        ("openat", libc::SYS_openat),
        ("mkdirat", libc::SYS_mkdirat),
        ("newfstatat", libc::SYS_newfstatat),
        ("unlinkat", libc::SYS_unlinkat),
        ("renameat", libc::SYS_renameat),
        ("linkat", libc::SYS_linkat),
        ("symlinkat", libc::SYS_symlinkat),
        ("readlinkat", libc::SYS_readlinkat),
        ("utimensat", libc::SYS_utimensat),
        ("renameat2", libc::SYS_renameat2),
        ("statx", libc::SYS_statx),
        ("openat2", libc::SYS_openat2),
        ("epoll_wait", libc::SYS_epoll_wait),
        ("epoll_ctl", libc::SYS_epoll_ctl),
        ("recvfrom", libc::SYS_recvfrom),
        ("sendto", libc::SYS_sendto),
        ("accept4", libc::SYS_accept4),
        ("shutdown", libc::SYS_shutdown),
        ("getrandom", libc::SYS_getrandom),
        ("writev", libc::SYS_writev),
    ];

    /// Our generator, pointed at x86_64, decides every call exactly as seccompiler's program
    /// for the same profile: every number 0..=500 (and the table, x32's bit, the extremes),
    /// every interesting value of every tested argument, four foreign architectures.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn on_x86_64_the_generator_decides_as_seccompiler() {
        use crate::seccomp::Backend;

        let table: Vec<(&str, u32)> = X86_64
            .iter()
            .map(|(name, nr)| (*name, u32::try_from(*nr).unwrap()))
            .collect();
        let arch = Arch {
            name: "x86_64",
            audit_arch: AUDIT_ARCH_X86_64,
            width: Width::Bits64,
            syscalls: &table,
        };
        let (_, text) = FILES.iter().find(|(a, _)| *a == "x86_64").unwrap();
        let file = parse("x86_64", text).unwrap();
        let mut profiles: Vec<(String, Vec<Rule>)> = PROFILES_NAMES
            .iter()
            .map(|name| ((*name).to_owned(), file.rules(name).unwrap()))
            .collect();
        profiles.push(("every_operator".to_owned(), every_operator()));
        for (name, rules) in profiles {
            let ours = compile(&arch, &name, &rules).unwrap();
            let seccompiler = {
                let mut defs = std::collections::BTreeMap::new();
                defs.insert(
                    name.clone(),
                    crate::seccomp::ProfileDef {
                        comment: String::new(),
                        extends: None,
                        syscalls: rules.clone(),
                    },
                );
                ProfileFile {
                    arch: "x86_64".to_owned(),
                    comment: String::new(),
                    profiles: defs,
                }
                .compile(&name, Backend::Seccompiler(seccompiler::TargetArch::x86_64))
                .unwrap()
            };
            check(&seccompiler);
            // Both agree with the rules' meaning, hence with each other.
            assert_decides_as_the_rules(&arch, &rules, &ours);
            assert_decides_as_the_rules(&arch, &rules, &seccompiler);
        }
    }
}
