//! A program with its static analysis done once, so that launching it many
//! times (on every core of every chiplet, step after step) costs nothing more.

use isa::{Engine, Program};

/// A program, the order its instructions reach each engine, and the
/// dependencies between them (see [`Program::dependencies`]).
#[derive(Debug, Clone)]
pub struct PreparedProgram {
    program: Program,
    /// Per instruction, how many earlier instructions it waits for.
    dep_counts: Vec<u32>,
    /// Per instruction `i`, the instructions waiting on it: `dependents[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    dependents: Vec<u32>,
    /// Per engine, its instructions in program order.
    queues: [Vec<u32>; 3],
}

impl PreparedProgram {
    pub fn new(program: Program) -> PreparedProgram {
        let deps = program.dependencies();
        let n = program.instrs.len();
        let dep_counts = deps.iter().map(|d| d.len() as u32).collect();
        let mut counts = vec![0u32; n + 1];
        for d in deps.iter().flatten() {
            counts[*d as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let starts = counts.clone();
        let mut fill = counts;
        let mut dependents = vec![0u32; starts[n] as usize];
        for (i, d) in deps.iter().enumerate() {
            for &p in d {
                dependents[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        let mut queues: [Vec<u32>; 3] = Default::default();
        for (i, instr) in program.instrs.iter().enumerate() {
            queues[instr.engine().index()].push(i as u32);
        }
        PreparedProgram { program, dep_counts, starts, dependents, queues }
    }

    pub fn program(&self) -> &Program {
        &self.program
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
    /// Instructions that wait on instruction `index`.
    pub fn dependents(&self, index: u32) -> &[u32] {
        &self.dependents[self.starts[index as usize] as usize..self.starts[index as usize + 1] as usize]
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
    fn dependents_invert_dependencies() {
        let mut p = Program::new();
        let a = p.buffer(64);
        let b = p.buffer(64);
        let c = p.buffer(64);
        p.push(Instr::Load { dst: a, addr: 0, bytes: 64 });
        p.push(Instr::Load { dst: b, addr: 64, bytes: 64 });
        p.push(Instr::MatMul { a, b, c, m: 1, n: 1, k: 1, dtype: Dtype::Fp8, acc: Dtype::Fp32, accumulate: false });
        p.push(Instr::Store { src: c, addr: 128, bytes: 4 });
        let prepared = PreparedProgram::new(p);
        assert_eq!(prepared.dep_counts(), [0, 0, 2, 1]);
        assert_eq!(prepared.dependents(0), [2]);
        assert_eq!(prepared.dependents(2), [3]);
        assert!(prepared.dependents(3).is_empty());
        assert_eq!(prepared.queue(Engine::Dma), [0, 1, 3]);
        assert_eq!(prepared.queue(Engine::Matrix), [2]);
    }
}
