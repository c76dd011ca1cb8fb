//! Import of MLCommons Chakra execution traces into a step trace.
//!
//! A Chakra trace is one file per rank: a `GlobalMetadata` message, then
//! `Node` messages, each preceded by its length as a varint (the `.et`
//! protobuf form), or the same messages as concatenated JSON objects (the
//! form `chakra_jsonizer` writes, protobuf's JSON mapping). Rank `i` becomes
//! device `i`.
//!
//! What maps, and to what:
//! - `COMP_NODE` with `num_ops` (FLOPs): a GEMM with those FLOPs and, when
//!   `tensor_size` is given, that many bytes of BF16 weights (the
//!   roofline-equivalent GEMM; without bytes, a 1024 × 1024 weight).
//! - `MEM_LOAD_NODE` / `MEM_STORE_NODE` with `tensor_size`: a transfer from /
//!   to the host.
//! - `COMM_SEND_NODE` with `comm_dst` and `comm_size`: a transfer to that
//!   rank; the matching `COMM_RECV_NODE` (same source, destination and
//!   `comm_tag`) stands for it in its rank's dependencies.
//! - `COMM_COLL_NODE` all-reduce, all-gather, reduce-scatter and all-to-all
//!   with `comm_size`: the collective over all ranks (the k-th collective of
//!   every rank is the same one), as npusim's point-to-point schedule.
//!
//! Every other node is counted by kind and why, never silently dropped; the
//! nodes that depend on it depend on its own dependencies instead.

use models::fabric::Endpoint;
use models::input::InputError;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use workloads::graph::{Kernel, Op, OpBody, OpClass, Shard, StepGraph, Transfer};

/// The fields of Chakra's `GlobalMetadata` that npusim reads (schema `et_def.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GlobalMetadata {
    #[prost(string, tag = "1")]
    pub version: String,
}

/// The fields of Chakra's `Node` that npusim reads; inputs, outputs and
/// timings are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    /// A `NodeType`: 4 = COMP_NODE, 7 = COMM_COLL_NODE, … (see `NODE_KINDS`).
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    #[prost(uint64, repeated, tag = "4")]
    pub ctrl_deps: Vec<u64>,
    #[prost(uint64, repeated, tag = "5")]
    pub data_deps: Vec<u64>,
    #[prost(message, repeated, tag = "10")]
    pub attr: Vec<Attribute>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Attribute {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(oneof = "Value", tags = "3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29")]
    pub value: Option<Value>,
}

/// The scalar values of an attribute; list values are not read.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(double, tag = "3")]
    Double(f64),
    #[prost(float, tag = "5")]
    Float(f32),
    #[prost(int32, tag = "7")]
    Int32(i32),
    #[prost(int64, tag = "9")]
    Int64(i64),
    #[prost(uint32, tag = "11")]
    Uint32(u32),
    #[prost(uint64, tag = "13")]
    Uint64(u64),
    #[prost(sint32, tag = "15")]
    Sint32(i32),
    #[prost(sint64, tag = "17")]
    Sint64(i64),
    #[prost(fixed32, tag = "19")]
    Fixed32(u32),
    #[prost(fixed64, tag = "21")]
    Fixed64(u64),
    #[prost(sfixed32, tag = "23")]
    Sfixed32(i32),
    #[prost(sfixed64, tag = "25")]
    Sfixed64(i64),
    #[prost(bool, tag = "27")]
    Bool(bool),
    #[prost(string, tag = "29")]
    String(String),
}

/// Chakra's `NodeType`s, by number.
pub const NODE_KINDS: [&str; 11] = [
    "INVALID_NODE",
    "METADATA_NODE",
    "MEM_LOAD_NODE",
    "MEM_STORE_NODE",
    "COMP_NODE",
    "COMM_SEND_NODE",
    "COMM_RECV_NODE",
    "COMM_COLL_NODE",
    "STORAGE_NODE",
    "BATCH_NODE",
    "CHECKPOINT_NODE",
];
/// The size attributes npusim reads, the most each may be, and its unit:
/// 2^46 FLOPs (7e13: a GEMM of that many lowers to `MAX_TILES` tiles of
/// 2 x 64 x 64 x 128 FLOPs), 1 TiB moved.
const SIZE_ATTRIBUTES: [(&str, u64, &str); 3] = [
    ("num_ops", workloads::graph::MAX_TILES << 20, "FLOPs"),
    ("tensor_size", workloads::graph::MAX_TRANSFER_BYTES, "bytes"),
    ("comm_size", workloads::graph::MAX_TRANSFER_BYTES, "bytes"),
];
/// Chakra's `CollectiveCommType`s, by number.
pub const COLLECTIVES: [&str; 10] = [
    "ALL_REDUCE",
    "REDUCE",
    "ALL_GATHER",
    "GATHER",
    "SCATTER",
    "BROADCAST",
    "ALL_TO_ALL",
    "REDUCE_SCATTER",
    "REDUCE_SCATTER_BLOCK",
    "BARRIER",
];

impl Node {
    /// The node's type by name.
    pub fn kind(&self) -> &'static str {
        NODE_KINDS.get(self.r#type as usize).copied().unwrap_or("UNKNOWN_NODE")
    }
    /// An attribute as a whole number, whatever integer type it was written in.
    fn int(&self, name: &str) -> Option<u64> {
        let value = self.attr.iter().find(|a| a.name == name)?.value.as_ref()?;
        let v: i128 = match *value {
            Value::Int32(v) | Value::Sint32(v) | Value::Sfixed32(v) => v.into(),
            Value::Int64(v) | Value::Sint64(v) | Value::Sfixed64(v) => v.into(),
            Value::Uint32(v) | Value::Fixed32(v) => v.into(),
            Value::Uint64(v) | Value::Fixed64(v) => v.into(),
            Value::Double(v) if v >= 0.0 => v as i128,
            _ => return None,
        };
        u64::try_from(v).ok()
    }
    /// The first size attribute that is present but not a whole number in
    /// range, described: a negative or absurd size is an error, never
    /// taken for a missing one.
    fn bad_size(&self) -> Option<String> {
        SIZE_ATTRIBUTES.iter().find_map(|&(name, limit, what)| {
            let value = self.attr.iter().find(|a| a.name == name)?.value.as_ref()?;
            match self.int(name) {
                Some(v) if v <= limit => None,
                _ => Some(format!(
                    "attribute `{name}`: expected a whole number of {what} from 0 to {limit}, found {value:?}"
                )),
            }
        })
    }
    fn flag(&self, name: &str) -> bool {
        self.attr.iter().any(|a| a.name == name && a.value == Some(Value::Bool(true)))
    }
    fn deps(&self) -> impl Iterator<Item = u64> + '_ {
        self.ctrl_deps.iter().chain(&self.data_deps).copied()
    }
}

/// What the import made of the traces.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub graph: StepGraph,
    /// Nodes mapped to ops (a receive counts, standing for its send).
    pub mapped: u64,
    /// Nodes not mapped, by kind and reason, with their counts.
    pub unmapped: BTreeMap<String, u64>,
}

fn parse_et(source: &str, bytes: &[u8]) -> Result<Vec<Node>, InputError> {
    let mut buf = bytes;
    let fail = |what: String| InputError::general(source, what);
    GlobalMetadata::decode_length_delimited(&mut buf)
        .map_err(|e| fail(format!("byte 0: expected a Chakra GlobalMetadata message: {e}")))?;
    let mut nodes = Vec::new();
    while !buf.is_empty() {
        let at = bytes.len() - buf.len();
        let node = Node::decode_length_delimited(&mut buf)
            .map_err(|e| fail(format!("byte {at}: expected a Chakra Node message: {e}")))?;
        nodes.push(node);
    }
    Ok(nodes)
}

/// A JSON number or a decimal string (protobuf's JSON form of 64-bit integers).
fn json_int(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok()).or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

fn json_node(v: &serde_json::Value) -> Result<Node, String> {
    let ints = |key: &str| -> Result<Vec<u64>, String> {
        match v.get(key) {
            None => Ok(Vec::new()),
            Some(list) => list
                .as_array()
                .ok_or(format!("field `{key}`: expected a list of ids"))?
                .iter()
                .map(|d| json_int(d).ok_or(format!("field `{key}`: expected node ids, found {d}")))
                .collect(),
        }
    };
    let r#type = match v.get("type") {
        None => 0,
        Some(t) => match t.as_str() {
            Some(name) => {
                NODE_KINDS.iter().position(|k| *k == name).ok_or(format!("field `type`: unknown node type {t}"))? as i32
            }
            None => json_int(t).ok_or(format!("field `type`: expected a node type, found {t}"))? as i32,
        },
    };
    let mut attr = Vec::new();
    for a in v.get("attr").and_then(|a| a.as_array()).into_iter().flatten() {
        let name = a.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        let value = if let Some(b) = a.get("boolVal").and_then(|b| b.as_bool()) {
            Some(Value::Bool(b))
        } else if let Some(s) = a.get("stringVal").and_then(|s| s.as_str()) {
            Some(Value::String(s.into()))
        } else {
            ["int64Val", "uint64Val", "int32Val", "uint32Val", "sint64Val", "sint32Val", "fixed64Val", "doubleVal"]
                .iter()
                .find_map(|k| a.get(*k).and_then(json_int))
                .map(Value::Uint64)
        };
        attr.push(Attribute { name, value });
    }
    Ok(Node {
        id: v.get("id").and_then(json_int).unwrap_or(0),
        name: v.get("name").and_then(|n| n.as_str()).unwrap_or_default().into(),
        r#type,
        ctrl_deps: ints("ctrlDeps")?,
        data_deps: ints("dataDeps")?,
        attr,
    })
}

fn parse_json(source: &str, text: &str) -> Result<Vec<Node>, InputError> {
    let mut nodes = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (i, value) in stream.enumerate() {
        let value = value.map_err(|e| InputError::general(source, format!("line {}: {e}", e.line())))?;
        if i == 0 {
            continue; // GlobalMetadata.
        }
        nodes.push(json_node(&value).map_err(|e| InputError::general(source, format!("node {}: {e}", i - 1)))?);
    }
    Ok(nodes)
}

/// One rank's trace: `.et` protobuf bytes, or the JSON form when it starts with `{`.
pub fn parse_rank(source: &str, bytes: &[u8]) -> Result<Vec<Node>, InputError> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| t.trim_start().starts_with('{'));
    match text {
        Some(text) => parse_json(source, text),
        None => parse_et(source, bytes),
    }
}

/// Rank-local progress of the import.
struct Rank {
    nodes: HashMap<u64, Node>,
    /// Dependencies not yet emitted, per node.
    waiting: HashMap<u64, BTreeSet<u64>>,
    dependents: HashMap<u64, Vec<u64>>,
    ready: BTreeSet<u64>,
    /// Per emitted node: the ops it stands for (none for an unmapped one: its dependencies').
    ops: HashMap<u64, Vec<u32>>,
    /// Collective nodes in id order.
    collectives: Vec<u64>,
}

/// Convert per-rank traces (rank `i` = device `i`) into one step graph.
pub fn import(ranks: &[(String, Vec<Node>)]) -> Result<Imported, InputError> {
    let devices = ranks.len() as u32;
    let mut state: Vec<Rank> = Vec::new();
    for (source, nodes) in ranks {
        let by_id: HashMap<u64, Node> = nodes.iter().map(|n| (n.id, n.clone())).collect();
        if by_id.len() < nodes.len() {
            let mut seen = std::collections::HashSet::new();
            let twice = nodes.iter().find(|n| !seen.insert(n.id)).map_or(0, |n| n.id);
            return Err(InputError::general(source, format!("node id {twice} is given to two nodes; ids must differ")));
        }
        let mut waiting = HashMap::new();
        let mut dependents: HashMap<u64, Vec<u64>> = HashMap::new();
        for n in nodes {
            if let Some(problem) = n.bad_size() {
                return Err(InputError::general(source, format!("node {}: {problem}", n.id)));
            }
            let deps: BTreeSet<u64> = n.deps().filter(|d| *d != n.id).collect();
            if let Some(d) = deps.iter().find(|d| !by_id.contains_key(d)) {
                return Err(InputError::general(
                    source,
                    format!("node {} depends on node {d}, which is not in the trace", n.id),
                ));
            }
            for &d in &deps {
                dependents.entry(d).or_default().push(n.id);
            }
            waiting.insert(n.id, deps);
        }
        let ready = waiting.iter().filter(|(_, d)| d.is_empty()).map(|(id, _)| *id).collect();
        let mut collectives: Vec<u64> = nodes.iter().filter(|n| n.kind() == "COMM_COLL_NODE").map(|n| n.id).collect();
        collectives.sort_unstable();
        state.push(Rank { nodes: by_id, waiting, dependents, ready, ops: HashMap::new(), collectives });
    }

    let mut ops: Vec<Op> = Vec::new();
    let mut unmapped: BTreeMap<String, u64> = BTreeMap::new();
    let mut mapped = 0u64;
    // Sends emitted, by (from, to, tag), waiting for their receives.
    let mut sends: HashMap<(u32, u32, u64), VecDeque<u32>> = HashMap::new();
    let mut next_collective = 0usize;
    let total: usize = state.iter().map(|r| r.nodes.len()).sum();
    let mut done = 0usize;

    // When nothing else can move, receives still waiting for a send stop waiting.
    let mut give_up_receives = false;
    loop {
        let mut progress = false;
        for (r, rank) in state.iter_mut().enumerate() {
            let candidates: Vec<u64> = rank.ready.iter().copied().collect();
            for id in candidates {
                let node = rank.nodes[&id].clone();
                let deps = dep_ops(rank, &node);
                let stands_for = match node.kind() {
                    "COMM_COLL_NODE" => continue,
                    "COMM_RECV_NODE" => {
                        let key = (
                            node.int("comm_src").unwrap_or(u64::MAX) as u32,
                            r as u32,
                            node.int("comm_tag").unwrap_or(0),
                        );
                        match sends.get_mut(&key).and_then(|q| q.pop_front()) {
                            Some(send) => {
                                mapped += 1;
                                let mut with = deps;
                                with.push(send);
                                with
                            }
                            None if !give_up_receives => continue,
                            None => {
                                *unmapped.entry("COMM_RECV_NODE without a matching send".into()).or_default() += 1;
                                deps
                            }
                        }
                    }
                    _ => match map_node(&node, r as u32, devices) {
                        Ok((class, body)) => {
                            mapped += 1;
                            if node.kind() == "COMM_SEND_NODE"
                                && let OpBody::Transfer(t) = &body
                                && let Some(Endpoint::Device(to)) = t.first().map(|t| t.to)
                            {
                                let key = (r as u32, to, node.int("comm_tag").unwrap_or(0));
                                sends.entry(key).or_default().push_back(ops.len() as u32);
                            }
                            ops.push(Op { name: op_name(r, &node), class, deps, body });
                            vec![(ops.len() - 1) as u32]
                        }
                        Err(why) => {
                            *unmapped.entry(format!("{} {why}", node.kind())).or_default() += 1;
                            deps
                        }
                    },
                };
                finish(rank, id, stands_for);
                done += 1;
                progress = true;
            }
        }
        // The next collective, once every rank has reached it.
        let reached = state.iter().all(|r| r.collectives.get(next_collective).is_some_and(|id| r.ready.contains(id)));
        if reached {
            let node = state[0].nodes[&state[0].collectives[next_collective]].clone();
            let mut deps: Vec<u32> =
                state.iter().flat_map(|rank| dep_ops(rank, &rank.nodes[&rank.collectives[next_collective]])).collect();
            deps.sort_unstable();
            deps.dedup();
            let last = match push_collective(&mut ops, &node, devices, deps.clone()) {
                Ok(last) => {
                    mapped += state.len() as u64;
                    last
                }
                Err(why) => {
                    *unmapped.entry(format!("COMM_COLL_NODE {why}")).or_default() += state.len() as u64;
                    deps
                }
            };
            for rank in state.iter_mut() {
                let id = rank.collectives[next_collective];
                finish(rank, id, last.clone());
            }
            done += state.len();
            next_collective += 1;
            progress = true;
        }
        if !progress {
            if give_up_receives {
                break;
            }
            give_up_receives = true;
        } else {
            give_up_receives = false;
        }
    }
    if done < total {
        let (r, id) = state
            .iter()
            .enumerate()
            .find_map(|(r, s)| s.nodes.keys().filter(|id| !s.ops.contains_key(id)).min().map(|id| (r, *id)))
            .unwrap_or((0, 0));
        return Err(InputError::general(
            &ranks[r].0,
            format!(
                "node {id} never becomes ready: its dependencies form a cycle, or the ranks' collectives do not match \
                 (rank {r} has {} collectives)",
                state[r].collectives.len()
            ),
        ));
    }
    Ok(Imported { graph: StepGraph { ops, devices }, mapped, unmapped })
}

/// A step to replay made of an imported graph: one request, no model, no
/// host sampling (a Chakra trace covers the devices' work only).
pub fn recorded_step(name: &str, graph: StepGraph) -> workloads::RecordedStep {
    use workloads::workload::{Phase, Plan, Routing, Sampling, Scenario, WorkloadSpec};
    let bf16 = isa::Dtype::Bf16;
    let workload = WorkloadSpec {
        name: name.into(),
        description: "imported from Chakra execution traces".into(),
        model: "chakra".into(),
        scenario: Scenario {
            phase: Phase::Decode,
            batch: 1,
            context_tokens: workloads::lengths::Length::Fixed(1),
            output_tokens: workloads::lengths::Length::Fixed(1),
            weight_dtype: bf16,
            activation_dtype: bf16,
            kv_dtype: bf16,
            op_dtypes: Default::default(),
            sampling: Sampling::Host,
            decoding: workloads::workload::Decoding::Greedy,
            top_k: 1,
            top_p: 1.0,
            mtp: None,
        },
        plan: Plan::default(),
        routing: Routing::Uniform,
        requests: None,
        serving: Default::default(),
    };
    workloads::RecordedStep {
        workload,
        model: None,
        seed: 0,
        step: 0,
        requests: vec![workloads::build::RequestStep { cached: 0, new_tokens: 1, logits: 1, replica: None }],
        sample: workloads::sampling::SampleWork::default(),
        graph,
    }
}

fn op_name(rank: usize, node: &Node) -> String {
    if node.name.is_empty() { format!("rank{rank}.node{}", node.id) } else { format!("rank{rank}.{}", node.name) }
}

/// The ops `node`'s dependencies stand for.
fn dep_ops(rank: &Rank, node: &Node) -> Vec<u32> {
    let mut deps: Vec<u32> = node.deps().filter_map(|d| rank.ops.get(&d)).flatten().copied().collect();
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// `id` is emitted, standing for `ops`; its dependents may become ready.
fn finish(rank: &mut Rank, id: u64, ops: Vec<u32>) {
    rank.ready.remove(&id);
    rank.ops.insert(id, ops);
    for d in rank.dependents.get(&id).cloned().unwrap_or_default() {
        // A node becomes ready once, when its last dependency finishes.
        if let Some(w) = rank.waiting.get_mut(&d)
            && w.remove(&id)
            && w.is_empty()
            && !rank.ops.contains_key(&d)
        {
            rank.ready.insert(d);
        }
    }
}

/// The op a point node maps to, or why it does not map.
fn map_node(node: &Node, rank: u32, devices: u32) -> Result<(OpClass, OpBody), String> {
    let here = Endpoint::Device(rank);
    match node.kind() {
        "COMP_NODE" if node.flag("is_cpu_op") => Err("on the CPU (is_cpu_op)".into()),
        "COMP_NODE" => {
            let flops = node.int("num_ops").filter(|f| *f > 0).ok_or("without num_ops")?;
            let bytes = node.int("tensor_size").unwrap_or(0);
            Ok((OpClass::Gemm, OpBody::Compute(vec![Shard { device: rank, kernel: roofline_gemm(flops, bytes) }])))
        }
        "MEM_LOAD_NODE" | "MEM_STORE_NODE" => {
            let bytes = node.int("tensor_size").filter(|b| *b > 0).ok_or("without tensor_size")?;
            let (from, to) =
                if node.kind() == "MEM_LOAD_NODE" { (Endpoint::Host(0), here) } else { (here, Endpoint::Host(0)) };
            Ok((OpClass::HostIo, OpBody::Transfer(vec![Transfer { from, to, bytes }])))
        }
        "COMM_SEND_NODE" => {
            let to = node.int("comm_dst").ok_or("without comm_dst")?;
            if to >= devices as u64 {
                return Err(format!("to rank {to}, beyond the {devices} ranks given"));
            }
            let bytes = node.int("comm_size").filter(|b| *b > 0).ok_or("without comm_size")?;
            Ok((
                OpClass::Collective,
                OpBody::Transfer(vec![Transfer { from: here, to: Endpoint::Device(to as u32), bytes }]),
            ))
        }
        _ => Err("(no npusim equivalent)".into()),
    }
}

/// A GEMM with `flops` FLOPs whose BF16 weights are `bytes` bytes (1024 x
/// 1024 when no size is known): what a kernel of that arithmetic intensity
/// costs on a matrix engine fed from memory.
fn roofline_gemm(flops: u64, bytes: u64) -> Kernel {
    let weights = (bytes / 2).max(1 << 20);
    let side = (weights as f64).sqrt().round().max(1.0) as u64;
    let rows = (flops as f64 / (2.0 * (side * side) as f64)).round().max(1.0) as u32;
    let dtype = isa::Dtype::Bf16;
    Kernel::Gemm { rows: vec![rows], n: side as u32, k: side as u32, weight_dtype: dtype, dtype }
}

/// The collective `node` over all ranks, as ops of transfers grouped by
/// dependency depth; returns the last op (or `deps` when nothing moves).
fn push_collective(ops: &mut Vec<Op>, node: &Node, devices: u32, deps: Vec<u32>) -> Result<Vec<u32>, String> {
    use workloads::collective::{CollectiveOp, schedule};
    let kind = node.int("comm_type").and_then(|t| COLLECTIVES.get(t as usize).copied()).unwrap_or("UNKNOWN");
    let op = match kind {
        "ALL_REDUCE" => CollectiveOp::AllReduce,
        "ALL_GATHER" => CollectiveOp::AllGather,
        "REDUCE_SCATTER" => CollectiveOp::ReduceScatter,
        "ALL_TO_ALL" => CollectiveOp::AllToAll,
        _ => return Err(format!("{kind} (no npusim equivalent)")),
    };
    let bytes = node.int("comm_size").ok_or("without comm_size")?;
    if devices < 2 || bytes == 0 {
        return Ok(deps);
    }
    let all: Vec<u32> = (0..devices).collect();
    let c = schedule(op, op.default_algorithm(), &all, bytes)?;
    let mut depth = vec![0usize; c.transfers.len()];
    for (i, t) in c.transfers.iter().enumerate() {
        depth[i] = t.after.iter().map(|&a| depth[a as usize] + 1).max().unwrap_or(0);
    }
    let levels = depth.iter().max().map_or(0, |d| d + 1);
    let mut last = deps;
    for level in 0..levels {
        let transfers: Vec<Transfer> = c
            .transfers
            .iter()
            .zip(&depth)
            .filter(|(_, d)| **d == level)
            .map(|(t, _)| Transfer { from: Endpoint::Device(t.from), to: Endpoint::Device(t.to), bytes: t.bytes })
            .collect();
        let name = format!("{}.{}", if node.name.is_empty() { "collective" } else { &node.name }, level);
        ops.push(Op { name, class: OpClass::Collective, deps: last, body: OpBody::Transfer(transfers) });
        last = vec![(ops.len() - 1) as u32];
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, value: Value) -> Attribute {
        Attribute { name: name.into(), value: Some(value) }
    }

    fn node(id: u64, kind: &str, deps: &[u64], attrs: Vec<Attribute>) -> Node {
        let r#type = NODE_KINDS.iter().position(|k| *k == kind).unwrap() as i32;
        Node { id, name: format!("n{id}"), r#type, ctrl_deps: vec![], data_deps: deps.to_vec(), attr: attrs }
    }

    /// One rank's trace in the `.et` form: length-delimited messages.
    fn et(nodes: &[Node]) -> Vec<u8> {
        let mut out = GlobalMetadata { version: "0.0.4".into() }.encode_length_delimited_to_vec();
        for n in nodes {
            out.extend(n.encode_length_delimited_to_vec());
        }
        out
    }

    /// Rank `r` of 2: a GEMM, an all-reduce of 1 MiB, a CPU op, a send to the other rank and its receive.
    fn rank(r: u64) -> Vec<Node> {
        vec![
            node(
                0,
                "COMP_NODE",
                &[],
                vec![attr("num_ops", Value::Int64(2 << 30)), attr("tensor_size", Value::Uint64(8 << 20))],
            ),
            node(
                1,
                "COMM_COLL_NODE",
                &[0],
                vec![attr("comm_type", Value::Int64(0)), attr("comm_size", Value::Int64(1 << 20))],
            ),
            node(2, "COMP_NODE", &[1], vec![attr("num_ops", Value::Int64(1000)), attr("is_cpu_op", Value::Bool(true))]),
            node(
                3,
                "COMM_SEND_NODE",
                &[2],
                vec![attr("comm_dst", Value::Int64(1 - r as i64)), attr("comm_size", Value::Int64(4096))],
            ),
            node(4, "COMM_RECV_NODE", &[2], vec![attr("comm_src", Value::Int64(1 - r as i64))]),
            node(5, "METADATA_NODE", &[3, 4], vec![]),
            node(6, "COMP_NODE", &[5], vec![attr("num_ops", Value::Uint64(1 << 20))]),
        ]
    }

    #[test]
    fn every_node_is_mapped_or_counted() {
        let ranks: Vec<(String, Vec<Node>)> =
            (0..2).map(|r| (format!("rank{r}.et"), parse_rank("t.et", &et(&rank(r))).unwrap())).collect();
        let imported = import(&ranks).unwrap();
        // Per rank: 2 GEMMs, the all-reduce, the send and the receive; the CPU op and the metadata are counted.
        assert_eq!(imported.mapped, 2 * 5);
        let unmapped: Vec<(&str, u64)> = imported.unmapped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(unmapped, [("COMP_NODE on the CPU (is_cpu_op)", 2), ("METADATA_NODE (no npusim equivalent)", 2)]);
        let g = &imported.graph;
        // The ring all-reduce of 2 devices: 2 steps of 2 transfers of 512 KiB.
        let ring: Vec<&Op> = g.ops.iter().filter(|o| o.name.starts_with("n1.")).collect();
        assert_eq!(ring.len(), 2);
        assert!(ring.iter().all(|o| matches!(&o.body, OpBody::Transfer(t) if t.len() == 2 && t[0].bytes == 1 << 19)));
        // It waits for both ranks' first GEMM.
        assert_eq!(ring[0].deps, [0, 1]);
        // Every dependency comes first, and the last GEMM waits (through the
        // metadata node) for the all-reduce, its own send and the peer's.
        for (i, op) in g.ops.iter().enumerate() {
            assert!(op.deps.iter().all(|&d| (d as usize) < i), "{}", op.name);
        }
        let last = g.ops.iter().position(|o| o.name == "rank1.n6").unwrap();
        let sends: Vec<u32> =
            g.ops.iter().enumerate().filter(|(_, o)| o.name.ends_with(".n3")).map(|(i, _)| i as u32).collect();
        assert_eq!(g.ops[last].deps, [&[3][..], &sends].concat());
        // A GEMM with the node's FLOPs (to rounding) and its bytes of BF16 weights.
        let OpBody::Compute(shards) = &g.ops[0].body else { panic!() };
        let flops = 2 * shards[0].kernel.macs();
        assert!((flops as f64 / (2u64 << 30) as f64 - 1.0).abs() < 0.01, "{flops}");
        assert_eq!(shards[0].kernel.weight_bytes(), 8 << 20);
    }

    #[test]
    fn negative_or_absurd_sizes_are_errors_not_missing_attributes() {
        // -5 and 1e23 FLOPs used to read as "without num_ops", and a comm_size
        // of i64::MAX exhausted memory.
        for (name, value) in [
            ("num_ops", Value::Int64(-5)),
            ("num_ops", Value::Double(1e23)),
            ("comm_size", Value::Int64(i64::MAX)),
            ("tensor_size", Value::Double(-1.0)),
        ] {
            let mut nodes = rank(0);
            nodes[0].attr.retain(|a| a.name != name);
            nodes[0].attr.push(attr(name, value.clone()));
            let e = import(&[("r0.et".into(), nodes.clone()), ("r1.et".into(), nodes)]).unwrap_err().to_string();
            assert!(e.contains("r0.et") && e.contains(&format!("node 0: attribute `{name}`")), "{e}");
            assert!(e.contains("expected a whole number"), "{e}");
        }
    }

    #[test]
    fn the_json_form_imports_like_the_protobuf_form() {
        let json = r#"{ "version": "0.0.4" }
{ "id": "0", "name": "n0", "type": "COMP_NODE",
  "attr": [ { "name": "num_ops", "int64Val": "2147483648" }, { "name": "tensor_size", "uint64Val": "8388608" } ] }
{ "id": "1", "name": "n1", "type": "COMM_COLL_NODE", "dataDeps": [ "0" ],
  "attr": [ { "name": "comm_type", "int64Val": "0" }, { "name": "comm_size", "int64Val": "1048576" } ] }
"#;
        let from_json = parse_rank("t.json", json.as_bytes()).unwrap();
        let from_et = parse_rank("t.et", &et(&rank(0)[..2])).unwrap();
        let a = import(&[("a".into(), from_json.clone()), ("b".into(), from_json)]).unwrap();
        let b = import(&[("a".into(), from_et.clone()), ("b".into(), from_et)]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unmatched_collectives_and_bad_bytes_are_errors() {
        let mut one = rank(0);
        one.retain(|n| n.id != 1);
        for n in &mut one {
            n.data_deps.retain(|d| *d != 1);
        }
        let e = import(&[("a.et".into(), rank(0)), ("b.et".into(), one)]).unwrap_err();
        assert!(e.to_string().contains("collectives do not match"), "{e}");
        let e = parse_rank("t.et", &[0x05, 0x0a, 0xff]).unwrap_err();
        assert!(e.to_string().starts_with("t.et: byte 0: expected a Chakra GlobalMetadata message"), "{e}");
    }
}
