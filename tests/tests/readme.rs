//! The README's command table is what `--help` lists: every command has a
//! row, every option of a command is in its row, and every option has a
//! description in `--help`.

fn leaves(command: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    let subcommands: Vec<_> = command.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if subcommands.is_empty() {
        out.push((path.clone(), command.clone()));
    }
    for sub in subcommands {
        let mut next = path.clone();
        next.push(sub.get_name().to_string());
        leaves(sub, next, out);
    }
}

/// The README's table row for the command at `path` (`npusim asm run|check`
/// stands for both).
fn row<'a>(readme: &'a str, path: &[String]) -> Option<&'a str> {
    readme.lines().filter(|l| l.starts_with("| `npusim")).find(|line| {
        let cell = line.split(" | ").next().unwrap_or("");
        let words: Vec<&str> = cell.trim_start_matches("| `npusim").split_whitespace().collect();
        path.iter().enumerate().all(|(i, part)| {
            words.get(i).is_some_and(|w| w.trim_matches('`').split("\\|").any(|alternative| alternative == part))
        })
    })
}

#[test]
fn the_command_table_lists_every_command_and_option_of_the_help() {
    let readme = include_str!("../../README.md");
    let mut commands = Vec::new();
    leaves(&npusim::command(), Vec::new(), &mut commands);
    let mut missing = Vec::new();
    for (path, command) in &commands {
        if path.is_empty() {
            continue;
        }
        let Some(row) = row(readme, path) else {
            missing.push(format!("no row for `npusim {}`", path.join(" ")));
            continue;
        };
        for arg in command.get_arguments().filter(|a| !a.is_global_set()) {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            if !row.contains(&format!("--{long}")) {
                missing.push(format!("`npusim {}`: --{long}", path.join(" ")));
            }
        }
    }
    for global in npusim::command().get_arguments().filter(|a| a.is_global_set()) {
        let long = global.get_long().unwrap();
        if !readme.contains(&format!("`--{long}")) {
            missing.push(format!("the option --{long}, which every command takes"));
        }
    }
    assert!(missing.is_empty(), "the README's command table lacks:\n{}", missing.join("\n"));
}

#[test]
fn every_option_in_the_help_has_a_description() {
    let mut commands = Vec::new();
    leaves(&npusim::command(), Vec::new(), &mut commands);
    let mut bare = Vec::new();
    for (path, command) in &commands {
        for arg in command.get_arguments() {
            if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
                bare.push(format!("npusim {} {}", path.join(" "), arg.get_id()));
            }
        }
        if command.get_about().is_none() {
            bare.push(format!("npusim {} (the command itself)", path.join(" ")));
        }
    }
    assert!(bare.is_empty(), "without a description in --help:\n{}", bare.join("\n"));
}
