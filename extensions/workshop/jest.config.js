module.exports = require('@continuum-hub/common/jest.config.base')(__dirname);
