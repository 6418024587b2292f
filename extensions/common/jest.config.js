module.exports = require('./jest.config.base')(__dirname);
