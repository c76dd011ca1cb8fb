//! `npusim model`: the figures a model config implies.

use crate::{Failure, inputs};
use std::fmt::Write as _;
use workloads::figures::ModelFigures;

#[derive(clap::Subcommand, Debug)]
pub enum ModelCommand {
    /// Total and active parameters, weight bytes per dtype, KV-cache bytes per token, FLOPs per token.
    Show {
        /// A shipped model (`npusim presets`), a TOML model config, or a Hugging Face config.json.
        model: String,
        /// Context length the FLOPs figures are for (decode: tokens before the new one; prefill: prompt length).
        #[arg(long, default_value_t = 2048)]
        context: u32,
        /// Print the result as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn model(command: ModelCommand, text: &mut String) -> Result<(), Failure> {
    match command {
        ModelCommand::Show { model, context, json } => {
            let figures = ModelFigures::of(&inputs::model(&model)?, context);
            if json {
                let _ = writeln!(text, "{}", serde_json::to_string_pretty(&figures).expect("figures serialise"));
            } else {
                text.push_str(&figures.text());
            }
            Ok(())
        }
    }
}
