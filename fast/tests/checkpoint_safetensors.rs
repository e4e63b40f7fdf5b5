//! The safetensors checkpoint format (`adadelta::checkpoint::safetensors`):
//! bit-exact round trips through `Adadelta::save_with` and `Adadelta::load`,
//! resuming equal to not stopping, files the `safetensors` crate reads and
//! whose header follows the spec, 8 bytes per parameter element, and every
//! kind of hostile file refused with an error that says what and where.

mod common;

use std::path::{Path, PathBuf};

use adadelta::checkpoint::{self, Durability, Format, SaveOptions};
use adadelta::optimizer::ExtraValue;
use adadelta::{
    Adadelta, CheckpointError, GroupDict, Options, Param, ParamStateDict, StateDict, TensorData,
};
use serde_json::{json, Value};

/// A fresh directory for the test `tag`.
fn dir(tag: &str) -> PathBuf {
    common::temp_dir(&format!("safetensors-{tag}"))
}

fn options() -> SaveOptions {
    SaveOptions::new(Format::Safetensors).durability(Durability::NoSync)
}

/// Saves `sd` as safetensors at `path` and returns the file's bytes.
fn save(path: &Path, sd: &StateDict) -> Vec<u8> {
    checkpoint::save(path, &sd.as_ref(), &options()).unwrap();
    std::fs::read(path).unwrap()
}

/// Loads `bytes` written to a file.
fn load_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<StateDict, CheckpointError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    checkpoint::load(&path)
}

/// Trains `opt` for `steps` steps; parameter 1 never gets a gradient, so
/// it has no state.
fn train(opt: &mut Adadelta, from: usize, steps: usize) {
    for t in from..from + steps {
        let g = |n: usize, k: f32| {
            (0..n)
                .map(|i| ((i as f32 + k) * 0.37).sin() * 0.3)
                .collect::<Vec<_>>()
        };
        opt.params_mut()[0].set_grad(g(3, t as f32)).unwrap();
        opt.params_mut()[2].set_grad(g(8, 2.0 * t as f32)).unwrap();
        opt.step().unwrap();
    }
}

fn param_bits(opt: &Adadelta) -> Vec<Vec<u32>> {
    opt.params()
        .iter()
        .map(|p| common::bits(p.data()))
        .collect()
}

/// A state dict with exotic bits: NaNs with payloads and both signs, -0.0,
/// infinities, subnormals; an empty parameter; a 0-dim one.
fn exotic() -> StateDict {
    let odd = vec![
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xff80_0001),
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        f32::MIN_POSITIVE,
    ];
    let rev: Vec<f32> = odd.iter().rev().copied().collect();
    let mut state = std::collections::BTreeMap::new();
    state.insert(
        0,
        ParamStateDict {
            step: f32::from_bits(0x7fa0_0005),
            square_avg: TensorData::new(vec![2, 4], odd).unwrap(),
            acc_delta: TensorData::new(vec![2, 4], rev).unwrap(),
        },
    );
    state.insert(
        3,
        ParamStateDict {
            step: -0.0,
            square_avg: TensorData::new(vec![0], vec![]).unwrap(),
            acc_delta: TensorData::new(vec![0], vec![]).unwrap(),
        },
    );
    state.insert(
        7,
        ParamStateDict {
            step: 16_777_216.0,
            square_avg: TensorData::new(vec![], vec![f32::from_bits(0x8000_0001)]).unwrap(),
            acc_delta: TensorData::new(vec![], vec![1.5]).unwrap(),
        },
    );
    StateDict {
        state,
        param_groups: vec![GroupDict {
            options: Options::default(),
            extra: Default::default(),
            params: (0..8).collect(),
            param_names: None,
        }],
    }
}

fn assert_same_bits(a: &StateDict, b: &StateDict) {
    assert_eq!(
        a.state.keys().collect::<Vec<_>>(),
        b.state.keys().collect::<Vec<_>>()
    );
    for (i, s) in &a.state {
        let t = &b.state[i];
        assert_eq!(s.step.to_bits(), t.step.to_bits(), "state[{i}].step");
        assert_eq!(s.square_avg.shape(), t.square_avg.shape(), "state[{i}]");
        assert_eq!(s.acc_delta.shape(), t.acc_delta.shape(), "state[{i}]");
        assert_eq!(
            common::bits(s.square_avg.data()),
            common::bits(t.square_avg.data()),
            "state[{i}].square_avg"
        );
        assert_eq!(
            common::bits(s.acc_delta.data()),
            common::bits(t.acc_delta.data()),
            "state[{i}].acc_delta"
        );
    }
    assert_eq!(common::json(a), common::json(b));
}

#[test]
fn a_saved_optimizer_loads_bit_for_bit_and_resumes_exactly_as_one_that_never_saved() {
    let dir = dir("a_saved_optimizer_loads_bit_for_bit_and_");
    let path = dir.join("opt.safetensors");
    let mut never_saved = common::optimizer();
    train(&mut never_saved, 0, 4);
    never_saved
        .save_with(&path, &SaveOptions::new(Format::Safetensors))
        .unwrap();

    let mut resumed = common::optimizer();
    for (p, q) in resumed.params_mut().iter_mut().zip(never_saved.params()) {
        p.data_mut().copy_from_slice(q.data());
    }
    resumed.load(&path).unwrap();
    assert_same_bits(&resumed.state_dict(), &never_saved.state_dict());
    assert_eq!(param_bits(&resumed), param_bits(&never_saved));

    train(&mut never_saved, 4, 3);
    train(&mut resumed, 4, 3);
    assert_eq!(param_bits(&resumed), param_bits(&never_saved));
    assert_same_bits(&resumed.state_dict(), &never_saved.state_dict());
    assert_eq!(common::content(&resumed), common::content(&never_saved));
}

#[test]
fn nan_payloads_negative_zero_and_every_other_bit_pattern_round_trip() {
    let dir = dir("nan_payloads_negative_zero_and_every_oth");
    let sd = exotic();
    save(&dir.join("exotic.safetensors"), &sd);
    let back = checkpoint::load(dir.join("exotic.safetensors")).unwrap();
    assert_same_bits(&back, &sd);
    assert_eq!(back, sd);
}

#[test]
fn the_same_state_gives_the_same_bytes() {
    let dir = dir("the_same_state_gives_the_same_bytes");
    let sd = exotic();
    let a = save(&dir.join("a.safetensors"), &sd);
    let b = save(&dir.join("b.safetensors"), &sd);
    assert_eq!(a, b);
}

#[test]
fn groups_with_extra_keys_and_exact_hyperparameters_round_trip() {
    let dir = dir("groups_with_extra_keys_and_exact_hyperpa");
    let mut sd = common::optimizer().state_dict();
    sd.param_groups[0].options.lr = 0.1 + 0.2;
    sd.param_groups[0].options.eps = 5e-324;
    sd.param_groups[1].options.weight_decay = f64::INFINITY;
    sd.param_groups[1].options.foreach = Some(true);
    let extra: adadelta::optimizer::Extra = [
        ("initial_lr", json!(0.5).into()),
        ("name", json!("encoder \"layers\" \u{e9}\u{1F600}").into()),
        ("betas", json!([0.9, 0.999]).into()),
        (
            "nested",
            ExtraValue::from_json(r#"{"z": null, "b": [true, {"c": -1}], "big": 123456789012345678901234567890, "tiny": 1e-400}"#).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    sd.param_groups[1].extra = extra.clone();
    let back = checkpoint::load({
        let p = dir.join("groups.safetensors");
        save(&p, &sd);
        p
    })
    .unwrap();
    assert_eq!(back.param_groups, sd.param_groups);
    assert_eq!(
        back.param_groups[0].options.lr.to_bits(),
        (0.1f64 + 0.2).to_bits()
    );
    assert_eq!(
        back.param_groups[0].options.eps.to_bits(),
        5e-324f64.to_bits()
    );
    assert_eq!(back.param_groups[1].extra, extra);
    assert_eq!(common::json(&back), common::json(&sd));
}

#[test]
fn state_for_only_some_parameters_round_trips() {
    let dir = dir("state_for_only_some_parameters_round_tri");
    let path = dir.join("partial.safetensors");
    let mut opt = common::optimizer();
    train(&mut opt, 0, 2);
    assert_eq!(
        opt.state_dict().state.keys().copied().collect::<Vec<_>>(),
        [0, 2]
    );
    opt.save_with(&path, &options()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let names = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .len();
    assert_eq!(names, 6);
    let mut resumed = common::optimizer();
    resumed.load(&path).unwrap();
    assert_eq!(resumed.state_dict(), opt.state_dict());
    assert!(resumed.state(1).is_none());
}

#[test]
fn an_empty_state_dict_and_empty_tensors_round_trip() {
    let dir = dir("an_empty_state_dict_and_empty_tensors_ro");
    let empty = StateDict::default();
    assert_eq!(
        checkpoint::load({
            let p = dir.join("empty.safetensors");
            save(&p, &empty);
            p
        })
        .unwrap(),
        empty
    );

    // An optimizer with a parameter of no element, and one of shape (2, 0).
    let path = dir.join("zero.safetensors");
    let params = || {
        vec![
            Param::new(vec![]),
            Param::with_shape(vec![], vec![2, 0]).unwrap(),
            Param::new(vec![1.0]),
        ]
    };
    let mut opt = Adadelta::new(params(), Options::default()).unwrap();
    for p in opt.params_mut() {
        let n = p.data().len();
        p.set_grad(vec![0.25; n]).unwrap();
    }
    opt.step().unwrap();
    assert_eq!(opt.state_dict().state[&1].square_avg.shape(), &[2, 0]);
    opt.save_with(&path, &options()).unwrap();
    let mut resumed = Adadelta::new(params(), Options::default()).unwrap();
    resumed.load(&path).unwrap();
    assert_eq!(resumed.state_dict(), opt.state_dict());
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("state.1.acc_delta").unwrap().shape(), &[2, 0]);
    assert!(st.tensor("state.0.square_avg").unwrap().data().is_empty());
}

/// The header text of a safetensors file, and its length field.
fn header(bytes: &[u8]) -> (u64, &str) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    (n, std::str::from_utf8(&bytes[8..8 + n as usize]).unwrap())
}

#[test]
fn the_file_reads_with_the_safetensors_crate_and_its_header_follows_the_spec() {
    let dir = dir("the_file_reads_with_the_safetensors_crat");
    let sd = exotic();
    let bytes = save(&dir.join("spec.safetensors"), &sd);

    // The crate reads it: every tensor F32 with its shape and its bytes.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 9);
    for (i, s) in &sd.state {
        for (kind, shape, data) in [
            ("step", &[][..], std::slice::from_ref(&s.step)),
            ("square_avg", s.square_avg.shape(), s.square_avg.data()),
            ("acc_delta", s.acc_delta.shape(), s.acc_delta.data()),
        ] {
            let t = st.tensor(&format!("state.{i}.{kind}")).unwrap();
            assert_eq!(t.dtype(), safetensors::Dtype::F32);
            assert_eq!(t.shape(), shape);
            let le: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(t.data(), &le[..], "state.{i}.{kind}");
        }
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().unwrap();
    assert_eq!(meta["format"], "adadelta.state_dict");
    assert_eq!(meta["format_version"], "1");
    let groups: Value = serde_json::from_str(&meta["param_groups"]).unwrap();
    assert_eq!(groups, serde_json::to_value(&sd.param_groups).unwrap());

    // The header: its length little-endian, a multiple of 8, padded with
    // spaces, JSON, offsets contiguous in header order, ending at the file's end.
    let (n, text) = header(&bytes);
    assert_eq!(n % 8, 0);
    assert!(text.starts_with('{'));
    let json_end = text.trim_end_matches(' ').len();
    assert!(n as usize - json_end < 8, "at most 7 bytes of padding");
    let v: Value = serde_json::from_str(text).unwrap();
    let mut entries: Vec<(usize, &str)> = v
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.as_str()))
        .collect();
    entries.sort();
    let order: Vec<&str> = entries.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        order,
        [
            "state.0.step",
            "state.0.square_avg",
            "state.0.acc_delta",
            "state.3.step",
            "state.3.square_avg",
            "state.3.acc_delta",
            "state.7.step",
            "state.7.square_avg",
            "state.7.acc_delta"
        ]
    );
    let mut at = 0;
    for k in order {
        let offsets = &v[k]["data_offsets"];
        assert_eq!(offsets[0], at, "{k} starts where the previous ends");
        at = offsets[1].as_u64().unwrap();
    }
    assert_eq!(8 + n + at, bytes.len() as u64);
    assert_eq!(Format::detect(&bytes), Some(Format::Safetensors));
}

#[test]
fn a_file_written_by_the_safetensors_crate_in_this_layout_loads() {
    let dir = dir("a_file_written_by_the_safetensors_crate_");
    let sd = exotic();
    let s = &sd.state[&0];
    let bytes_of = |d: &[f32]| d.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (step, v, u) = (
        bytes_of(&[s.step]),
        bytes_of(s.square_avg.data()),
        bytes_of(s.acc_delta.data()),
    );
    fn view(shape: Vec<usize>, data: &[u8]) -> safetensors::tensor::TensorView<'_> {
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, data).unwrap()
    }
    let tensors = vec![
        ("state.0.acc_delta", view(vec![2, 4], &u)),
        ("state.0.step", view(vec![], &step)),
        ("state.0.square_avg", view(vec![2, 4], &v)),
    ];
    let groups = serde_json::to_string(&sd.param_groups).unwrap();
    let meta = std::collections::HashMap::from([
        ("format".to_string(), "adadelta.state_dict".to_string()),
        ("format_version".to_string(), "1".to_string()),
        ("param_groups".to_string(), groups),
    ]);
    let bytes = safetensors::serialize(tensors, Some(meta)).unwrap();
    let back = load_bytes(&dir, "by-crate.safetensors", &bytes).unwrap();
    assert_eq!(back.state[&0], *s);
    assert_eq!(back.param_groups, sd.param_groups);
}

#[test]
fn the_file_is_eight_bytes_per_parameter_element_plus_the_header() {
    let dir = dir("the_file_is_eight_bytes_per_parameter_el");
    let path = dir.join("big.safetensors");
    let n = 100_000;
    let params: Vec<Param> = (0..10).map(|k| Param::new(vec![k as f32; n])).collect();
    let mut opt = Adadelta::new(params, Options::default()).unwrap();
    for p in opt.params_mut() {
        p.set_grad(vec![0.5; n]).unwrap();
    }
    opt.step().unwrap();
    opt.save_with(&path, &options()).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let elements = 10 * n as u64;
    assert!(
        size as f64 <= 8.05 * elements as f64,
        "{size} bytes for {elements} parameter elements: {} B/param",
        size as f64 / elements as f64
    );
    let bytes = std::fs::read(&path).unwrap();
    let (h, _) = header(&bytes);
    assert_eq!(
        size,
        8 + h + 8 * elements + 4 * 10,
        "nothing but the header and data"
    );
    let mut resumed = Adadelta::new(
        (0..10).map(|k| Param::new(vec![k as f32; n])).collect(),
        Options::default(),
    )
    .unwrap();
    resumed.load(&path).unwrap();
    assert_eq!(resumed.state_dict(), opt.state_dict());
}

// ---- hostile files ----

/// A safetensors file of `header` (padded to 8 bytes) and `data`.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// The `__metadata__` entry of a valid file with one group of `params`.
fn metadata() -> String {
    let groups = serde_json::to_string(&exotic().param_groups).unwrap();
    format!(
        r#""__metadata__":{{"format":"adadelta.state_dict","format_version":"1","param_groups":{}}}"#,
        serde_json::to_string(&groups).unwrap()
    )
}

/// One parameter's three entries, at `at`, with square_avg and acc_delta of
/// `len` elements.
fn entries(index: usize, at: usize, len: usize) -> String {
    let (s, v, u) = (at, at + 4, at + 4 + 4 * len);
    format!(
        r#""state.{index}.step":{{"dtype":"F32","shape":[],"data_offsets":[{s},{}]}},"state.{index}.square_avg":{{"dtype":"F32","shape":[{len}],"data_offsets":[{v},{u}]}},"state.{index}.acc_delta":{{"dtype":"F32","shape":[{len}],"data_offsets":[{u},{}]}}"#,
        s + 4,
        u + 4 * len
    )
}

/// The error of loading `bytes`, which must be refused.
fn refused(dir: &Path, name: &str, bytes: &[u8]) -> CheckpointError {
    match load_bytes(dir, name, bytes) {
        Ok(sd) => panic!("{name}: loaded {sd:?}"),
        Err(e) => {
            let path = dir.join(name);
            assert_eq!(e.path(), Some(path.as_path()), "{e}");
            e
        }
    }
}

fn format_error(dir: &Path, name: &str, bytes: &[u8], says: &[&str]) {
    let e = refused(dir, name, bytes);
    assert!(matches!(e, CheckpointError::Format { .. }), "{name}: {e:?}");
    let text = e.to_string();
    for s in says {
        assert!(text.contains(s), "{name}: {text:?} should say {s:?}");
    }
    assert!(text.len() < 1000, "{name}: the message is cut: {text}");
}

#[test]
fn the_crafted_files_of_these_tests_are_valid() {
    let dir = dir("the_crafted_files_of_these_tests_are_val");
    let h = format!("{{{},{}}}", metadata(), entries(0, 0, 2));
    let back = load_bytes(&dir, "crafted.safetensors", &file(&h, &[0; 20])).unwrap();
    assert_eq!(back.state[&0].square_avg.len(), 2);
}

#[test]
fn a_truncated_file_is_refused_at_every_length() {
    let dir = dir("a_truncated_file_is_refused_at_every_len");
    let bytes = save(&dir.join("whole.safetensors"), &exotic());
    let (n, _) = header(&bytes);
    for len in 0..bytes.len() {
        let e = refused(&dir, "cut.safetensors", &bytes[..len]);
        let text = e.to_string();
        if len >= 9 {
            assert!(matches!(e, CheckpointError::Format { .. }), "{len}: {e:?}");
        }
        if len as u64 > 8 + n {
            assert!(text.contains("truncated"), "{len}: {text}");
        }
    }
    // And one byte too many.
    let mut long = bytes.clone();
    long.push(0);
    format_error(
        &dir,
        "long.safetensors",
        &long,
        &["1 byte follows the last tensor"],
    );
}

#[test]
fn a_huge_declared_header_length_is_refused_before_it_is_read() {
    let dir = dir("a_huge_declared_header_length_is_refused");
    for (n, says) in [
        (u64::MAX, "over the 100000000-byte limit"),
        (100_000_001, "over the 100000000-byte limit"),
        (99_999_999, "but the file has only 8 bytes after it"),
        (9, "but the file has only 8 bytes after it"),
    ] {
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend(b"{\"a\":1} ");
        format_error(&dir, "huge-header.safetensors", &bytes, &[says]);
    }
}

#[test]
fn huge_declared_tensor_sizes_are_refused_without_allocating_them() {
    let dir = dir("huge_declared_tensor_sizes_are_refused_w");
    // 4 TiB declared, consistent with its shape, in a tiny file: refused as
    // truncated (an attempt to allocate would say "cannot allocate").
    let len = 1usize << 40;
    let h = format!("{{{},{}}}", metadata(), entries(0, 0, len));
    format_error(
        &dir,
        "huge-tensor.safetensors",
        &file(&h, &[0; 20]),
        &["truncated", "\"state.0.acc_delta\""],
    );
    // A shape whose size overflows.
    let h = format!(
        r#"{{{},"state.0.square_avg":{{"dtype":"F32","shape":[{},4],"data_offsets":[0,4]}}}}"#,
        metadata(),
        usize::MAX / 2
    );
    format_error(
        &dir,
        "overflow.safetensors",
        &file(&h, &[0; 4]),
        &["\"state.0.square_avg\"", "overflows"],
    );
    // Offsets beyond any file.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[{},{}]}}}}"#,
        metadata(),
        usize::MAX - 4,
        usize::MAX
    );
    format_error(
        &dir,
        "far.safetensors",
        &file(&h, &[0; 4]),
        &["\"state.0.step\"", "beyond the end of the data"],
    );
}

#[test]
fn a_tensor_of_another_dtype_is_refused_naming_the_dtype_and_the_tensor() {
    let dir = dir("a_tensor_of_another_dtype_is_refused_nam");
    for dtype in ["BF16", "F64", "I32", "F16"] {
        let h = format!("{{{},{}}}", metadata(), entries(0, 0, 2)).replace(
            r#""state.0.square_avg":{"dtype":"F32""#,
            &format!(r#""state.0.square_avg":{{"dtype":"{dtype}""#),
        );
        format_error(
            &dir,
            "dtype.safetensors",
            &file(&h, &[0; 20]),
            &[
                &format!("dtype {dtype}"),
                "\"state.0.square_avg\"",
                "expected F32 (the parameters' dtype)",
            ],
        );
    }
    let h = format!("{{{},{}}}", metadata(), entries(0, 0, 2)).replace(
        r#""state.0.step":{"dtype":"F32""#,
        r#""state.0.step":{"dtype":"Q7""#,
    );
    format_error(
        &dir,
        "unknown-dtype.safetensors",
        &file(&h, &[0; 20]),
        &["\"state.0.step\"", "Q7"],
    );
}

#[test]
fn overlapping_offsets_gaps_and_wrong_spans_are_refused_naming_the_tensors() {
    let dir = dir("overlapping_offsets_gaps_and_wrong_spans");
    // acc_delta starts inside square_avg.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[0,4]}},"state.0.square_avg":{{"dtype":"F32","shape":[2],"data_offsets":[4,12]}},"state.0.acc_delta":{{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "overlap.safetensors",
        &file(&h, &[0; 16]),
        &[
            "\"state.0.acc_delta\"",
            "[8, 16]",
            "overlaps",
            "\"state.0.square_avg\" [4, 12]",
        ],
    );
    // Two tensors on the same bytes.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[0,4]}},"state.0.square_avg":{{"dtype":"F32","shape":[1],"data_offsets":[4,8]}},"state.0.acc_delta":{{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}}}"#,
        metadata()
    );
    format_error(&dir, "same.safetensors", &file(&h, &[0; 8]), &["overlaps"]);
    // A gap.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[0,4]}},"state.0.square_avg":{{"dtype":"F32","shape":[1],"data_offsets":[8,12]}},"state.0.acc_delta":{{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "gap.safetensors",
        &file(&h, &[0; 16]),
        &["gap", "\"state.0.square_avg\""],
    );
    // A span that does not fit the shape, and one backwards.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[0,4]}},"state.0.square_avg":{{"dtype":"F32","shape":[3],"data_offsets":[4,12]}},"state.0.acc_delta":{{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "span.safetensors",
        &file(&h, &[0; 16]),
        &[
            "\"state.0.square_avg\"",
            "needs 12 bytes",
            "[4, 12] span 8 bytes",
        ],
    );
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[4,0]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "backwards.safetensors",
        &file(&h, &[0; 4]),
        &["backwards"],
    );
    // A step of two elements.
    let h = format!(
        r#"{{{},"state.0.step":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"state.0.square_avg":{{"dtype":"F32","shape":[0],"data_offsets":[8,8]}},"state.0.acc_delta":{{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "step.safetensors",
        &file(&h, &[0; 8]),
        &["\"state.0.step\"", "2 elements"],
    );
}

#[test]
fn a_missing_tensor_is_refused_naming_the_parameter() {
    let dir = dir("a_missing_tensor_is_refused_naming_the_p");
    let h = format!("{{{},{}}}", metadata(), entries(0, 0, 2));
    // Drop acc_delta (the last entry) and its bytes.
    let cut = h.find(r#","state.0.acc_delta""#).unwrap();
    let h = format!("{}}}", &h[..cut]);
    let e = refused(&dir, "missing.safetensors", &file(&h, &[0; 12]));
    assert!(matches!(e, CheckpointError::Invalid { .. }), "{e:?}");
    assert!(
        e.to_string().contains(r#"state[0] has no "acc_delta""#),
        "{e}"
    );
    // The same parameter's tensor twice.
    let h = format!(
        r#"{{{},{},"state.0.step":{{"dtype":"F32","shape":[],"data_offsets":[20,24]}}}}"#,
        metadata(),
        entries(0, 0, 2)
    );
    format_error(
        &dir,
        "twice.safetensors",
        &file(&h, &[0; 24]),
        &["appears twice"],
    );
}

#[test]
fn unknown_tensors_and_files_of_another_kind_are_refused() {
    let dir = dir("unknown_tensors_and_files_of_another_kin");
    // A model's weights: no metadata.
    let h = r#"{"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    format_error(
        &dir,
        "model.safetensors",
        &file(h, &[0; 4]),
        &[
            "no \"__metadata__\"",
            "not an optimizer state dict",
            "\"weight\"",
        ],
    );
    // Hugging Face's `{"format": "pt"}`.
    let h = r#"{"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    format_error(
        &dir,
        "pt.safetensors",
        &file(h, &[0; 4]),
        &["\"pt\"", "adadelta.state_dict"],
    );
    // A later version.
    let h =
        format!("{{{}}}", metadata()).replace(r#""format_version":"1""#, r#""format_version":"2""#);
    format_error(
        &dir,
        "v2.safetensors",
        &file(&h, &[]),
        &["\"2\"", "version \"1\""],
    );
    let h = format!("{{{}}}", metadata()).replace(r#""format_version":"1","#, "");
    format_error(&dir, "no-version.safetensors", &file(&h, &[]), &["absent"]);
    // An unknown tensor in our format.
    let h = format!(
        r#"{{{},"state.0.momentum_buffer":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "unknown.safetensors",
        &file(&h, &[0; 4]),
        &["unknown tensor \"state.0.momentum_buffer\""],
    );
    // A name too long to quote whole.
    let long = "x".repeat(5000);
    let h = format!(
        r#"{{{},"{long}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
        metadata()
    );
    format_error(
        &dir,
        "long-name.safetensors",
        &file(&h, &[0; 4]),
        &["5000 bytes in all"],
    );
}

#[test]
fn a_header_or_metadata_that_is_not_json_is_refused() {
    let dir = dir("a_header_or_metadata_that_is_not_json_is");
    // The header.
    format_error(
        &dir,
        "header.safetensors",
        &file("{not json", &[]),
        &["safetensors header", "line 1"],
    );
    format_error(
        &dir,
        "header-array.safetensors",
        &file("{\"a\": [1, 2]}", &[]),
        &["\"a\""],
    );
    let mut bytes = file("{\"\u{e9}\":1}", &[]);
    bytes[10] = 0xff;
    format_error(
        &dir,
        "utf8.safetensors",
        &bytes,
        &["not UTF-8", "at byte 10 of the file"],
    );
    format_error(
        &dir,
        "metadata-type.safetensors",
        &file(r#"{"__metadata__":{"format":1}}"#, &[]),
        &["\"__metadata__\""],
    );
    // param_groups not JSON, not a list, a bad group, absent.
    for (groups, says) in [
        ("not json", "is not JSON"),
        ("[{\"lr\": 1.0,", "is not JSON"),
        ("{\"lr\": 1.0}", "not a JSON list of groups"),
    ] {
        let h = format!(
            r#"{{"__metadata__":{{"format":"adadelta.state_dict","format_version":"1","param_groups":{}}}}}"#,
            serde_json::to_string(groups).unwrap()
        );
        format_error(
            &dir,
            "groups.safetensors",
            &file(&h, &[]),
            &["\"param_groups\"", says],
        );
    }
    let groups =
        r#"[{"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0, "params": []}, {"lr": 1.0}]"#;
    let h = format!(
        r#"{{"__metadata__":{{"format":"adadelta.state_dict","format_version":"1","param_groups":{}}}}}"#,
        serde_json::to_string(groups).unwrap()
    );
    let e = refused(&dir, "bad-group.safetensors", &file(&h, &[]));
    assert!(matches!(e, CheckpointError::Invalid { .. }), "{e:?}");
    assert!(
        e.to_string().contains(r#"param_groups[1] has no "rho""#),
        "{e}"
    );
    let h = r#"{"__metadata__":{"format":"adadelta.state_dict","format_version":"1"}}"#;
    format_error(
        &dir,
        "no-groups.safetensors",
        &file(h, &[]),
        &["no \"param_groups\""],
    );
}

#[test]
fn a_refused_load_leaves_the_optimizer_as_it_was() {
    let dir = dir("a_refused_load_leaves_the_optimizer_as_i");
    let mut opt = common::optimizer();
    train(&mut opt, 0, 2);
    let before = common::snapshot(&opt);
    let bytes = save(&dir.join("good.safetensors"), &opt.state_dict());
    let path = dir.join("bad.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(opt.load(&path).is_err());
    assert_eq!(common::snapshot(&opt), before);
}

#[test]
fn mutated_files_give_an_error_or_a_state_dict_never_a_panic() {
    let dir = dir("mutated_files_give_an_error_or_a_state_d");
    let base = save(&dir.join("base.safetensors"), &exotic());
    let mut rng = common::Rng(common::env_or("ADADELTA_FUZZ_SEED", 1));
    let cases = common::env_or("ADADELTA_SAFETENSORS_CASES", 2000);
    let path = dir.join("mutated.safetensors");
    for case in 0..cases {
        let mut bytes = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = b"{}[],:\"0123456789 eE-."[rng.below(22)],
                2 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(sd) = checkpoint::load(&path) {
            // Whatever loads saves and loads again to the same state.
            let again = checkpoint::load({
                let p = dir.join("resaved.safetensors");
                save(&p, &sd);
                p
            })
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(again, sd, "case {case}");
        }
    }
}

#[test]
fn a_state_dict_that_cannot_be_written_is_refused_before_anything_is_written() {
    let dir = dir("a_state_dict_that_cannot_be_written_is_r");
    let path = dir.join("never.safetensors");
    // A shape that does not fit its data.
    let sd = exotic();
    let mut r = sd.as_ref();
    r.state[0].1.square_avg.shape = vec![3, 3].into();
    let e = checkpoint::save(&path, &r, &options()).unwrap_err();
    assert!(matches!(e, CheckpointError::Invalid { .. }), "{e:?}");
    assert!(!path.exists());
    // A parameter listed twice.
    let mut r = sd.as_ref();
    r.state[1].0 = 0;
    let e = checkpoint::save(&path, &r, &options()).unwrap_err();
    assert!(e.to_string().contains("parameter 0 twice"), "{e}");
    assert!(!path.exists());
    // A reserved extra key.
    let mut sd = sd;
    sd.param_groups[0].extra.insert("lr", json!(1));
    let e = checkpoint::save(&path, &sd.as_ref(), &options()).unwrap_err();
    assert!(matches!(e, CheckpointError::Invalid { .. }), "{e:?}");
    assert!(!path.exists());
}
