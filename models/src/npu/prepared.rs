//! A program with its static analysis done once, so that launching it many
//! times (on every core of every chiplet, step after step) costs nothing more.

use isa::{Engine, Hazard, Program};

/// Lists of instruction indices, one list per instruction, stored flat.
#[derive(Debug, Clone, Default)]
struct Lists {
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl Lists {
    fn build(n: usize, pairs: &[(u32, u32)]) -> Lists {
        let mut starts = vec![0u32; n + 1];
        for &(from, _) in pairs {
            starts[from as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(from, to) in pairs {
            items[fill[from as usize] as usize] = to;
            fill[from as usize] += 1;
        }
        Lists { starts, items }
    }
    fn get(&self, i: u32) -> &[u32] {
        &self.items[self.starts[i as usize] as usize..self.starts[i as usize + 1] as usize]
    }
}

/// A program, the order its instructions reach each engine, and the
/// dependencies between them (see [`Program::dependencies`]).
#[derive(Debug, Clone)]
pub struct PreparedProgram {
    program: Program,
    /// Per instruction, how many earlier instructions it waits for.
    dep_counts: Vec<u32>,
    /// Per instruction, the dependencies it waits on (earlier instructions).
    waits_on: Lists,
    /// Per instruction, those waiting only for it to finish reading.
    after_reads: Lists,
    /// Per instruction, those waiting for its results.
    after_result: Lists,
    /// Per engine, its instructions in program order.
    queues: [Vec<u32>; 4],
    /// Whether the program is well formed whatever the scratchpad size.
    well_formed: bool,
}

impl PreparedProgram {
    pub fn new(program: Program) -> PreparedProgram {
        let deps = program.dependencies();
        let n = program.instrs.len();
        let dep_counts = deps.iter().map(|d| d.len() as u32).collect();
        let mut waits = Vec::new();
        let mut reads = Vec::new();
        let mut results = Vec::new();
        for (i, d) in deps.iter().enumerate() {
            for dep in d {
                waits.push((i as u32, dep.on));
                match dep.hazard {
                    Hazard::Reads => reads.push((dep.on, i as u32)),
                    Hazard::Result => results.push((dep.on, i as u32)),
                }
            }
        }
        let mut queues: [Vec<u32>; 4] = Default::default();
        for (i, instr) in program.instrs.iter().enumerate() {
            queues[instr.engine().index()].push(i as u32);
        }
        PreparedProgram {
            well_formed: program.check(u64::MAX).is_ok(),
            dep_counts,
            waits_on: Lists::build(n, &waits),
            after_reads: Lists::build(n, &reads),
            after_result: Lists::build(n, &results),
            queues,
            program,
        }
    }

    pub fn program(&self) -> &Program {
        &self.program
    }
    /// Whether the program passes [`Program::check`] on a scratchpad of `bytes`.
    pub fn fits(&self, bytes: u64) -> bool {
        self.well_formed && self.program.scratchpad_bytes() <= bytes
    }
    pub fn len(&self) -> usize {
        self.program.instrs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.program.instrs.is_empty()
    }
    pub fn dep_counts(&self) -> &[u32] {
        &self.dep_counts
    }
    /// The earlier instructions `index` waits on.
    pub fn waits_on(&self, index: u32) -> &[u32] {
        self.waits_on.get(index)
    }
    /// Instructions released once `index` has finished reading its operands.
    pub fn after_reads(&self, index: u32) -> &[u32] {
        self.after_reads.get(index)
    }
    /// Instructions released once the results of `index` are visible.
    pub fn after_result(&self, index: u32) -> &[u32] {
        self.after_result.get(index)
    }
    /// The instructions of `engine`, in program order.
    pub fn queue(&self, engine: Engine) -> &[u32] {
        &self.queues[engine.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isa::{Dtype, Instr};

    #[test]
    fn releases_split_by_hazard() {
        let mut p = Program::new();
        let a = p.buffer(64);
        let b = p.buffer(64);
        let c = p.buffer(64);
        p.push(Instr::load(a, 0, 64)); // 0
        p.push(Instr::load(b, 64, 64)); // 1
        p.push(Instr::MatMul { c, a, b, m: 1, n: 1, k: 1, dtype: Dtype::Fp8, acc: Dtype::Fp32, accumulate: false }); // 2
        p.push(Instr::store(c, 128, 4)); // 3: needs 2's result
        p.push(Instr::load(b, 256, 64)); // 4: overwrites b, needs only 2 to have read it
        let prepared = PreparedProgram::new(p);
        assert_eq!(prepared.dep_counts(), [0, 0, 2, 1, 2]);
        assert_eq!(prepared.after_result(0), [2]);
        assert_eq!(prepared.after_result(2), [3]);
        assert_eq!(prepared.after_reads(2), [4]);
        assert_eq!(prepared.after_result(1), [2, 4]);
        assert_eq!(prepared.waits_on(4), [1, 2]);
        assert_eq!(prepared.queue(Engine::Dma), [0, 1, 3, 4]);
        assert_eq!(prepared.queue(Engine::Matrix), [2]);
    }
}
