//! Reading the optimizer: its default options, groups, parameters and
//! per-parameter state.

use super::{Adadelta, Options, ParamGroup, ParamState, Shaped};
use crate::Error;

impl<P: Shaped> Adadelta<P> {
    /// The default options (those given at construction).
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.defaults().lr, 1.0);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn defaults(&self) -> &Options {
        &self.defaults
    }

    /// The parameter groups (PyTorch's `param_groups`).
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![0.0])], Default::default())?;
    /// assert_eq!(opt.param_groups().len(), 1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn param_groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// `group` if there is such a group, else [`Error::NoSuchGroup`].
    pub(super) fn group_index(&self, group: usize) -> Result<usize, Error> {
        if group < self.groups.len() {
            Ok(group)
        } else {
            Err(Error::NoSuchGroup {
                group,
                groups: self.groups.len(),
            })
        }
    }

    /// All parameters, in position order.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.params()[0].data(), &[2.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn params(&self) -> &[P] {
        &self.params
    }

    /// All parameters, mutable, in position order: set gradients here.
    /// Replacing a parameter by one of another size makes the next step fail
    /// with [`Error::LengthMismatch`] if it has state.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// opt.params_mut()[0].set_grad(vec![1.0])?;
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn params_mut(&mut self) -> &mut [P] {
        &mut self.params
    }

    /// The parameters of one group.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.group_params(0)?.len(), 1);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn group_params(&self, group: usize) -> Result<&[P], Error> {
        let g = self.group_index(group)?;
        Ok(&self.params[self.groups[g].params()])
    }

    /// The parameters of one group, mutable.
    ///
    /// ```
    /// let mut opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// opt.group_params_mut(0)?[0].data_mut()[0] = 3.0;
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn group_params_mut(&mut self, group: usize) -> Result<&mut [P], Error> {
        let g = self.group_index(group)?;
        let r = self.groups[g].params();
        Ok(&mut self.params[r])
    }

    /// The parameters, consuming the optimizer.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert_eq!(opt.into_params()[0].data(), &[2.0]);
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn into_params(self) -> Vec<P> {
        self.params
    }

    /// The state of the parameter at `index`, if it has been stepped.
    ///
    /// ```
    /// let opt = adadelta::Adadelta::new(vec![adadelta::Param::new(vec![2.0])], Default::default())?;
    /// assert!(opt.state(0).is_none() && opt.state(7).is_none());
    /// # Ok::<(), adadelta::Error>(())
    /// ```
    pub fn state(&self, index: usize) -> Option<&ParamState<P::Elem>> {
        self.states.get(index).and_then(Option::as_ref)
    }
}
