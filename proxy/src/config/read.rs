//! Reading the conf dir: every `*.toml` file, parsed with its syntax errors and unknown keys
//! reported by key path and line.

use super::assemble::*;
use super::error::{ConfigErrors, Problems};
use super::file::*;
use super::runtime::*;
use std::path::{Path, PathBuf};

/// A parsed file and the name it is reported under.
pub(super) struct Parsed {
    pub name: String,
    pub conf: FileConf,
}

pub(super) fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let dir_name = dir.display().to_string();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect(),
        Err(e) => {
            problems.add(&dir_name, "", format!("cannot read the conf dir: {e}"));
            return Err(ConfigErrors(problems.0));
        }
    };
    paths.sort();
    if paths.is_empty() {
        problems.add(&dir_name, "", "no *.toml files in the conf dir");
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Some(conf) = parse_file(&name, &text, &mut problems) {
                    files.push(Parsed { name, conf });
                }
            }
            Err(e) => problems.add(&name, "", format!("cannot read: {e}")),
        }
    }
    // A file that did not parse may hold the missing sections: do not report them twice.
    let all_parsed = files.len() == paths.len();
    let config = validate(dir, &dir_name, files, all_parsed, &mut problems);
    if problems.0.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems.0))
    }
}

/// Parses one file, reporting syntax errors and unknown keys with their key path and line.
pub(super) fn parse_file(name: &str, text: &str, problems: &mut Problems) -> Option<FileConf> {
    let de = match toml::de::Deserializer::parse(text) {
        Ok(de) => de,
        Err(e) => {
            problems.add(name, "", syntax_message(text, &e));
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, FileConf>(de) {
        Ok(conf) => Some(conf),
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            problems.add(name, key, syntax_message(text, e.inner()));
            None
        }
    }
}

pub(super) fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message.to_string(),
    }
}
