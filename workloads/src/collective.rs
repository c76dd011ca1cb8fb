//! Collective operations as point-to-point transfers: all-reduce (ring or
//! tree), all-gather and reduce-scatter (ring), and all-to-all (direct). A
//! collective is a list of transfers, each allowed to start once the
//! transfers it forwards or combines have arrived at its source; running
//! them on the fabric's links is what shows their contention.
//!
//! Sizes follow NCCL's conventions: `bytes` is the buffer of an all-reduce,
//! the gathered output of an all-gather, the input of a reduce-scatter, and
//! each device's send buffer of an all-to-all. So does the bus bandwidth:
//! the algorithm bandwidth `bytes / time` times the share of the data every
//! device must send, `2(P − 1)/P` for an all-reduce and `(P − 1)/P` for the
//! others, which makes it comparable with a link's bandwidth.

use models::fabric::Endpoint;
use models::npu::{CommandKind, CommandList};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectiveOp {
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Each device sends to the next around a ring, one chunk per step.
    Ring,
    /// A binary tree over the devices in order: reduce up, broadcast down, pipelined in chunks.
    Tree,
    /// Every device sends straight to every other.
    Direct,
}

impl CollectiveOp {
    /// The share of `bytes` each device must send, by which the algorithm
    /// bandwidth is scaled into the bus bandwidth.
    pub fn bus_factor(self, devices: u32) -> f64 {
        let p = devices.max(1) as f64;
        match self {
            CollectiveOp::AllReduce => 2.0 * (p - 1.0) / p,
            _ => (p - 1.0) / p,
        }
    }

    /// The algorithm used when none is asked for.
    pub fn default_algorithm(self) -> Algorithm {
        match self {
            CollectiveOp::AllToAll => Algorithm::Direct,
            _ => Algorithm::Ring,
        }
    }
}

/// One point-to-point transfer, between positions in the device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: u32,
    pub to: u32,
    pub bytes: u64,
    /// Transfers (by index, all earlier) that must have arrived at `from` first.
    pub after: Vec<u32>,
}

/// A collective over `devices` (system device indices) as transfers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collective {
    pub devices: Vec<u32>,
    pub transfers: Vec<Transfer>,
}

/// `bytes` split into `parts` chunks as even as whole bytes allow.
fn split(bytes: u64, parts: u64) -> impl Iterator<Item = u64> {
    (0..parts).map(move |k| bytes / parts + u64::from(k < bytes % parts))
}

/// A ring of `steps` steps: at step `s` device `i` sends chunk `(i − s) mod P`
/// to device `i + 1`, once it has the chunk from step `s − 1`.
fn ring(p: u32, bytes: u64, steps: u32) -> Vec<Transfer> {
    let chunks: Vec<u64> = split(bytes, p as u64).collect();
    let mut out = Vec::new();
    for s in 0..steps {
        for i in 0..p {
            let chunk = ((i + p * steps - s) % p) as usize;
            // The transfer that brought this chunk to `i` in the step before.
            let after = if s == 0 { vec![] } else { vec![(s - 1) * p + (i + p - 1) % p] };
            out.push(Transfer { from: i, to: (i + 1) % p, bytes: chunks[chunk], after });
        }
    }
    out
}

/// A pipelined binary tree: each chunk is reduced up to the root and broadcast back down.
fn tree(p: u32, bytes: u64) -> Vec<Transfer> {
    const PIPELINE_CHUNK: u64 = 1 << 20;
    let pieces = bytes.div_ceil(PIPELINE_CHUNK).clamp(1, 64);
    let children = |i: u32| [2 * i + 1, 2 * i + 2].into_iter().filter(move |&c| c < p);
    let mut out: Vec<Transfer> = Vec::new();
    for piece in split(bytes, pieces) {
        // Up: children before parents, so deepest first.
        let mut up = vec![u32::MAX; p as usize];
        for i in (1..p).rev() {
            let after = children(i).map(|c| up[c as usize]).collect();
            up[i as usize] = out.len() as u32;
            out.push(Transfer { from: i, to: (i - 1) / 2, bytes: piece, after });
        }
        // Down: the root once its children's pieces are in, the others once their parent's is.
        let mut down = vec![u32::MAX; p as usize];
        for i in 0..p {
            for c in children(i) {
                let after = if i == 0 { children(0).map(|k| up[k as usize]).collect() } else { vec![down[i as usize]] };
                down[c as usize] = out.len() as u32;
                out.push(Transfer { from: i, to: c, bytes: piece, after });
            }
        }
    }
    out
}

/// The transfers of `op` by `algorithm` over `devices`.
pub fn schedule(op: CollectiveOp, algorithm: Algorithm, devices: &[u32], bytes: u64) -> Result<Collective, String> {
    let p = devices.len() as u32;
    if p < 2 {
        return Err(format!("a collective needs at least 2 devices, not {p}"));
    }
    let mut sorted = devices.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err("a device is listed twice".into());
    }
    let transfers = match (op, algorithm) {
        (CollectiveOp::AllReduce, Algorithm::Ring) => ring(p, bytes, 2 * (p - 1)),
        (CollectiveOp::AllReduce, Algorithm::Tree) => tree(p, bytes),
        (CollectiveOp::AllGather | CollectiveOp::ReduceScatter, Algorithm::Ring) => ring(p, bytes, p - 1),
        (CollectiveOp::AllToAll, Algorithm::Direct) => {
            let each: Vec<u64> = split(bytes, p as u64).collect();
            (0..p)
                .flat_map(|i| (1..p).map(move |k| (i, (i + k) % p)))
                .map(|(i, j)| Transfer { from: i, to: j, bytes: each[j as usize], after: vec![] })
                .collect()
        }
        (op, algorithm) => return Err(format!("{op:?} has no {algorithm:?} algorithm here")),
    };
    Ok(Collective { devices: devices.to_vec(), transfers })
}

impl Collective {
    /// One command list per device taking part (in device-list order): a
    /// receive per incoming transfer, and a send per outgoing one that
    /// waits for the receives it forwards. Tags are `tag_base` plus the
    /// transfer's index.
    pub fn command_lists(&self, tag_base: u64) -> Vec<CommandList> {
        let mut lists = vec![CommandList::default(); self.devices.len()];
        let mut recv_command = vec![0u32; self.transfers.len()];
        for (t, transfer) in self.transfers.iter().enumerate() {
            let tag = tag_base + t as u64;
            let deps = transfer.after.iter().map(|&a| recv_command[a as usize]).collect();
            let to = Endpoint::Device(self.devices[transfer.to as usize]);
            lists[transfer.from as usize].push(deps, CommandKind::Send { to, bytes: transfer.bytes, tag });
            recv_command[t] =
                lists[transfer.to as usize].push(vec![], CommandKind::Recv { bytes: transfer.bytes, tag });
        }
        lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each device ends up holding, simulating the transfers as data:
    /// per device, per chunk, the set of devices whose contributions it has.
    #[test]
    fn a_ring_all_reduce_gives_every_device_every_contribution() {
        let p = 5u32;
        let c = schedule(CollectiveOp::AllReduce, Algorithm::Ring, &[10, 11, 12, 13, 14], 1000).unwrap();
        assert_eq!(c.transfers.len() as u32, 2 * (p - 1) * p);
        // Per device and chunk: a bit set of the contributions held.
        let mut held = vec![vec![0u32; p as usize]; p as usize];
        for (i, chunks) in held.iter_mut().enumerate() {
            for chunk in chunks.iter_mut() {
                *chunk = 1 << i;
            }
        }
        for (t, tr) in c.transfers.iter().enumerate() {
            let step = t as u32 / p;
            let chunk = ((tr.from + 2 * (p - 1) * p - step) % p) as usize;
            let sent = held[tr.from as usize][chunk];
            let got = &mut held[tr.to as usize][chunk];
            // Reduce-scatter combines; all-gather overwrites with the full sum.
            *got = if step < p - 1 { *got | sent } else { sent };
        }
        assert!(held.iter().flatten().all(|&h| h == (1 << p) - 1), "{held:?}");
        // Every device sends 2(P - 1)/P of the buffer.
        let sent: u64 = c.transfers.iter().filter(|t| t.from == 0).map(|t| t.bytes).sum();
        assert_eq!(sent, 2 * (p as u64 - 1) * 1000 / p as u64);
    }

    #[test]
    fn a_tree_reduces_to_the_root_then_broadcasts() {
        let c = schedule(CollectiveOp::AllReduce, Algorithm::Tree, &[0, 1, 2, 3, 4, 5], 3 << 20).unwrap();
        // Three pieces of 1 MiB, each up 5 edges and down 5 edges.
        assert_eq!(c.transfers.len(), 3 * 10);
        for (t, tr) in c.transfers.iter().enumerate() {
            assert!(tr.after.iter().all(|&a| (a as usize) < t && c.transfers[a as usize].to == tr.from));
        }
        let lists = c.command_lists(100);
        assert_eq!(lists.len(), 6);
        assert!(lists.iter().all(|l| !l.commands.is_empty()));
    }

    #[test]
    fn all_to_all_sends_each_device_its_share() {
        let c = schedule(CollectiveOp::AllToAll, Algorithm::Direct, &[0, 1, 2, 3], 4000).unwrap();
        assert_eq!(c.transfers.len(), 12);
        assert!(c.transfers.iter().all(|t| t.bytes == 1000 && t.after.is_empty() && t.from != t.to));
        assert!(schedule(CollectiveOp::AllGather, Algorithm::Tree, &[0, 1], 10).is_err());
        assert!(schedule(CollectiveOp::AllReduce, Algorithm::Ring, &[0, 0], 10).is_err());
    }
}
