//! # workloads: what runs on the hardware, and the run itself
//!
//! - [`model`]: transformer configs (A.X K1, DeepSeek-V3, Llama) and the
//!   figures derived from them (parameters, KV-cache bytes).
//! - [`figures`]: what a model config implies (parameters, bytes, FLOPs).
//! - [`hf`]: import of a Hugging Face `config.json` into a model config.
//! - [`workload`]: a workload file: the model, the scenario (batch, lengths,
//!   dtypes), the parallel plan and the MoE routing model; [`lengths`] the
//!   token counts of requests, fixed or drawn per request.
//! - [`placement`]: where the model lives: replicas, pipeline stages and
//!   each routed expert's devices.
//! - [`build`]: the op graph of one step ([`graph::StepGraph`]), placed on
//!   the system's chiplets, with MoE dispatch and combine as transfers.
//! - [`lower`] and [`kernels`]: the graph lowered to per-chiplet command
//!   lists of per-core ISA programs.
//! - [`arrivals`] and [`scheduler`]: the requests (a batch, an arrival
//!   process or a request trace) and their continuous batching: chunked
//!   prefill, KV-cache blocks, preemption.
//! - [`runtime`]: the serving runtime on the host CPU model, which forms,
//!   launches and samples each step; [`run`] assembles the machine around it
//!   and runs the event engine.
//!
//! ```no_run
//! let hardware = models::presets::load_preset("sovereign-node").unwrap();
//! let workload = workloads::workload_preset("axk1-decode").unwrap();
//! let result = workloads::run(&hardware, &workload, 1).unwrap();
//! println!("{} tokens in {}", result.requests.iter().map(|r| r.tokens).sum::<u32>(), result.simulated);
//! ```

pub mod arrivals;
pub mod build;
pub mod collective;
pub mod figures;
pub mod graph;
pub mod hf;
pub mod inspect;
pub mod kernels;
pub mod lengths;
pub mod lower;
pub mod micro;
pub mod model;
pub mod placement;
pub mod routing;
pub mod run;
pub mod runtime;
pub mod sampling;
pub mod scheduler;
pub mod step_memo;
pub mod workload;

pub use run::{RecordedStep, RunError, RunResult, check, record_step, replay, run};
pub use workload::{DEFAULT_WORKLOAD, Workload, load_workload, workload_preset};
