//! `cargo xtask critest --benchmark`: critest's own benchmark specs (`-benchmark`) with a
//! parameters file made here (20 container lifecycles, 50 pod lifecycles, 10 image
//! pull/status/remove rounds, one at a time; the images are the harness's, served from its
//! loopback registry) and a summary of the data files critest writes: per operation, samples,
//! median, mean and max, as a markdown table. critest's figures for containerd come from other
//! machines and years: the README says which and how they compare.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parameters file, flat lowerCamelCase as critest reads it.
const PARAMS: &str = "containersNumber: 20
containersNumberParallel: 1
containerBenchmarkTimeoutSeconds: 200
podsNumber: 50
podsNumberParallel: 1
podBenchmarkTimeoutSeconds: 200
imagesNumber: 10
imagesNumberParallel: 1
imageBenchmarkTimeoutSeconds: 200
imagePullingBenchmarkImage: \"gcr.io/k8s-staging-cri-tools/test-image-tags:3\"
imageListingBenchmarkImages:
  - \"gcr.io/k8s-staging-cri-tools/test-image-tags:3\"
  - \"gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest\"
  - \"registry.k8s.io/e2e-test-images/nonewprivs:1.3\"
";

/// Where the parameters and critest's data files go for one run.
pub struct BenchDir {
    dir: PathBuf,
}

impl BenchDir {
    /// Makes `<dir>` with the parameters file and an empty output folder (critest does not
    /// make it, and fails only in its log when it is missing).
    pub fn make(dir: &Path) -> Result<BenchDir> {
        let out = dir.join("out");
        if out.exists() {
            std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
        }
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(dir.join("params.yaml"), PARAMS).context("writing params.yaml")?;
        Ok(BenchDir {
            dir: dir.to_path_buf(),
        })
    }

    /// critest's arguments for a benchmark run into this folder.
    pub fn args(&self) -> Vec<String> {
        vec![
            "-benchmark".into(),
            format!(
                "-benchmarking-params-file={}",
                self.dir.join("params.yaml").display()
            ),
            format!(
                "-benchmarking-output-dir={}",
                self.dir.join("out").display()
            ),
        ]
    }

    /// The summary table of every data file critest wrote.
    pub fn summary(&self) -> Result<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("out"))
            .context("reading critest's output folder")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut table = String::from(
            "| benchmark | operation | n | median ms | mean ms | max ms |\n|---|---|---|---|---|---|\n",
        );
        for f in files {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            let data: Data =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().replace("_data", ""))
                .unwrap_or_default();
            for (op, mut ns) in data.by_operation() {
                table.push_str(&row(&name, &op, &mut ns));
            }
        }
        Ok(table)
    }
}

/// One of critest's `*_benchmark_data.json` files.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    operations_names: Vec<String>,
    datapoints: Vec<Datapoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Datapoint {
    operations_durations_ns: Vec<u64>,
}

impl Data {
    /// Durations per operation, in the file's order of operations.
    fn by_operation(&self) -> Vec<(String, Vec<u64>)> {
        let mut by: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for d in &self.datapoints {
            for (i, ns) in d.operations_durations_ns.iter().enumerate() {
                by.entry(i).or_default().push(*ns);
            }
        }
        by.into_iter()
            .map(|(i, ns)| {
                let name = self.operations_names.get(i).cloned().unwrap_or_default();
                (name, ns)
            })
            .collect()
    }
}

fn row(bench: &str, op: &str, ns: &mut [u64]) -> String {
    ns.sort_unstable();
    let ms = |v: u64| v as f64 / 1e6;
    let n = ns.len();
    let median = if n == 0 { 0 } else { ns[n / 2] };
    let mean = if n == 0 {
        0.0
    } else {
        ns.iter().map(|v| ms(*v)).sum::<f64>() / n as f64
    };
    let max = ns.last().copied().unwrap_or(0);
    format!(
        "| {bench} | {op} | {n} | {:.2} | {mean:.2} | {:.2} |\n",
        ms(median),
        ms(max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_per_operation() {
        let data: Data = serde_json::from_str(
            r#"{"operationsNames":["A","B"],"numParallel":1,"datapoints":[
                {"sampleIndex":0,"operationsDurationsNs":[1000000,3000000],"metaInfo":null},
                {"sampleIndex":1,"operationsDurationsNs":[3000000,5000000],"metaInfo":null},
                {"sampleIndex":2,"operationsDurationsNs":[2000000,4000000],"metaInfo":null}]}"#,
        )
        .expect("parse");
        let ops = data.by_operation();
        assert_eq!(ops.len(), 2);
        let (name, mut ns) = ops[0].clone();
        assert_eq!(name, "A");
        assert_eq!(
            row("x", &name, &mut ns),
            "| x | A | 3 | 2.00 | 2.00 | 3.00 |\n"
        );
    }
}
