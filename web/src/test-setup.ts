// Times in the unit tests are written in UTC.
process.env.TZ = 'UTC';
