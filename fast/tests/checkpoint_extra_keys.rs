//! A group's extra keys (PyTorch's group keys other than the optimizer's
//! own) come back as they went in: the same keys, in the same order, with
//! the same JSON text, through the JSON and safetensors formats and the
//! optimizer; through the torch format as Python's `json.loads` would have
//! them, or with an error naming the key where a pickle cannot hold them.

use std::path::PathBuf;

use adadelta::checkpoint::{self, Format, SaveOptions};
use adadelta::optimizer::ExtraValue;
use adadelta::{Adadelta, Options, Param, StateDict};

/// Extra keys that a `serde_json::Value` would have changed: an integer
/// beyond 64 bits, a number below the smallest subnormal, a trailing zero,
/// keys out of sorted order at the top and inside an object.
const EXTRAS: &str = r#""zeta":123456789012345678901234567890,"tiny":1e-400,"exact":1.50,"alpha":{"y":[1,{"b":null,"a":true}],"b":"s"}"#;

fn text() -> String {
    format!(
        r#"{{"state":{{}},"param_groups":[{{"lr":1.0,"rho":0.9,"eps":1e-6,"weight_decay":0.0,"maximize":false,"capturable":false,"foreach":null,"differentiable":false,{EXTRAS},"params":[0]}}]}}"#
    )
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adadelta-extra-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn extra_keys_come_back_from_json_with_their_text_and_order() {
    let sd = StateDict::<f32>::from_json_str(&text()).unwrap();
    let keys: Vec<_> = sd.param_groups[0].extra.keys().collect();
    assert_eq!(keys, ["zeta", "tiny", "exact", "alpha"]);
    assert_eq!(
        sd.param_groups[0].extra["zeta"].json(),
        "123456789012345678901234567890"
    );
    assert_eq!(sd.param_groups[0].extra["tiny"].json(), "1e-400");
    let back = sd.to_json_string().unwrap();
    assert!(back.contains(EXTRAS), "{back}");
    assert_eq!(back.trim_end(), text());
}

#[test]
fn extra_keys_come_back_through_the_optimizer_and_safetensors() {
    let sd = StateDict::from_json_str(&text()).unwrap();
    let mut opt = Adadelta::new(vec![Param::new(vec![0.0])], Options::default()).unwrap();
    opt.load_state_dict(sd.clone()).unwrap();
    assert_eq!(opt.state_dict(), sd);
    let path = temp("extra.safetensors");
    let options = SaveOptions::new(Format::Safetensors);
    checkpoint::save(&path, &opt.state_dict().as_ref(), &options).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap(), sd);
}

#[test]
fn through_the_torch_format_extra_keys_keep_their_order_and_python_values() {
    let mut sd = StateDict::<f32>::from_json_str(&text()).unwrap();
    let path = temp("extra.pt");
    let options = SaveOptions::new(Format::Torch);
    // A pickle's int here is 64 bits: the integer of 30 digits is refused,
    // naming the key, and nothing is written.
    let err = checkpoint::save(&path, &sd.as_ref(), &options).unwrap_err();
    let want = format!(
        "{}: invalid state dict: param_groups[0].zeta is 123456789012345678901234567890, which \
         cannot be pickled: the integer 123456789012345678901234567890 does not fit in 64 bits",
        path.display()
    );
    assert_eq!(err.to_string(), want);
    assert!(!path.exists());
    sd.param_groups[0].extra.remove("zeta");
    checkpoint::save(&path, &sd.as_ref(), &options).unwrap();
    let back = checkpoint::load::<f32>(&path).unwrap();
    let got: Vec<_> = back.param_groups[0]
        .extra
        .iter()
        .map(|(k, v)| (k, v.json()))
        .collect();
    // Python's float("1e-400") is 0.0 and float("1.50") is 1.5; the
    // nested object keeps its order.
    assert_eq!(
        got,
        [
            ("tiny", "0.0"),
            ("exact", "1.5"),
            ("alpha", r#"{"y":[1,{"b":null,"a":true}],"b":"s"}"#)
        ]
    );
}

#[test]
fn an_extra_value_nested_deeper_than_128_levels_is_refused() {
    let deep = format!("{}0{}", "[".repeat(200), "]".repeat(200));
    let text = text().replace(r#""tiny":1e-400"#, &format!(r#""tiny":{deep}"#));
    let err = StateDict::<f32>::from_json_str(&text)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("state dict JSON: a value nested more than 128 levels deep in param_groups[0].tiny at line 1 column "),
        "{err}"
    );
    let err = ExtraValue::from_json(&deep).unwrap_err().to_string();
    assert_eq!(err, "a value nested more than 128 levels deep");
    assert!(ExtraValue::from_json(&format!("{}0{}", "[".repeat(100), "]".repeat(100))).is_ok());
}

#[test]
fn a_duplicate_key_inside_an_extra_value_is_refused() {
    let text = text().replace(r#""b":"s""#, r#""b":"s","y":2"#);
    let err = StateDict::<f32>::from_json_str(&text)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            r#"state dict JSON: duplicate key "y" in param_groups[0].alpha at line 1 column "#
        ),
        "{err}"
    );
}
