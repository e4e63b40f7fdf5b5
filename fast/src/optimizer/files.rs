//! Checkpoint files of the optimizer: [`Adadelta::save`],
//! [`Adadelta::save_with`] and [`Adadelta::load`], over
//! [`crate::checkpoint`].

use std::path::Path;

use super::{Adadelta, Shaped};
use crate::checkpoint::Stored;
use crate::checkpoint::{self, CheckpointError, SaveOptions};

impl<P: Shaped> Adadelta<P>
where
    P::Elem: Stored,
{
    /// Saves the state dict to `path` atomically and durably, in the format
    /// its extension names ([`Format::from_path`](crate::checkpoint::Format::from_path)): `.json`, `.safetensors`,
    /// or anything else for PyTorch's `torch.save` format. It streams from
    /// the live state ([`state_dict_ref`](Self::state_dict_ref)) unless a
    /// state-dict post-hook is registered, which needs an owned copy.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-opt-{}.pt", std::process::id()));
    /// let opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.save(&path)?;
    /// let mut other = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// other.load(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        self.save_with(path, &SaveOptions::default())
    }

    /// Saves as [`save`](Self::save) does, in the format and durability of
    /// `options`.
    ///
    /// ```
    /// use adadelta::{Adadelta, Param};
    /// use adadelta::checkpoint::{Durability, Format, SaveOptions};
    /// let path = std::env::temp_dir().join(format!("adadelta-doc-optw-{}.bin", std::process::id()));
    /// let opt = Adadelta::new(vec![Param::new(vec![1.0])], Default::default())?;
    /// opt.save_with(&path, &SaveOptions::new(Format::Safetensors).durability(Durability::NoSync))?;
    /// assert_eq!(adadelta::StateDict::<f32>::load(&path)?, opt.state_dict());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_with(
        &self,
        path: impl AsRef<Path>,
        options: &SaveOptions,
    ) -> Result<(), CheckpointError> {
        if self.hooks.state_dict_post.len() == 0 {
            checkpoint::save(path, &self.state_dict_ref(), options)
        } else {
            checkpoint::save(path, &self.state_dict().as_ref(), options)
        }
    }

    /// Reads a state dict from `path`, in whichever format it is
    /// ([`checkpoint::load`]), and loads it
    /// ([`load_state_dict`](Self::load_state_dict)). The tensors are read
    /// straight into the buffers that become the state; on any error the
    /// optimizer is unchanged.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![1.0])], Default::default())?;
    /// assert!(opt.load("/nonexistent/optimizer.json").is_err());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let sd = checkpoint::load(path)?;
        self.load_state_dict(sd)
            .map_err(|e| CheckpointError::from(e).with_path(path))
    }
}
