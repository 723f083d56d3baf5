import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { buildProgram } from '../../src/cli/main.ts';
import { longFlag, resolveOption, serveOptions, serveSwitches } from '../../src/config/options.ts';
import { renderOptionsTable, withOptionsTable } from '../../src/config/options-table.ts';
import { REPO } from '../helpers/index.ts';

describe('the options table', () => {
  it("is the README's options table, word for word", () => {
    const readme = readFileSync(`${REPO}README.md`, 'utf8');
    assert.equal(
      withOptionsTable(readme),
      readme,
      'README.md differs from src/config/options.ts: run "node --import tsx scripts/options-table.ts"',
    );
    assert.ok(readme.includes(renderOptionsTable()));
  });

  it('drives the flags and environment variables of serve', () => {
    const serve = buildProgram().commands.find((c) => c.name() === 'serve');
    assert.ok(serve);
    const registered = serve.options.map((o) => [o.long, o.envVar]);
    const expected = [
      ...Object.values(serveOptions).map((o) => [longFlag(o), o.env]),
      ...Object.values(serveSwitches).map((o) => [o.flag, undefined]),
    ];
    assert.deepEqual(registered, expected);
  });

  it('names every flag and variable once', () => {
    const flags = Object.values(serveOptions).map(longFlag);
    const envs = Object.values(serveOptions).map((o) => o.env);
    assert.equal(new Set(flags).size, flags.length);
    assert.equal(new Set(envs).size, envs.length);
  });

  it('parses every default with the option’s own parser', () => {
    for (const [name, option] of Object.entries(serveOptions)) {
      if (!('default' in option)) continue;
      assert.notEqual(resolveOption(name as keyof typeof serveOptions, undefined), undefined, name);
    }
  });

  it('a given value wins over the default; a blank one counts as unset', () => {
    assert.equal(resolveOption('port', '8080'), 8080);
    assert.equal(resolveOption('port', undefined), 3000);
    assert.equal(resolveOption('port', '  '), 3000);
    assert.deepEqual(resolveOption('retrySchedule', '1s'), [1000]);
    assert.equal(resolveOption('retention', undefined), undefined);
  });

  it('an unparsable value names the variable and the flag to fix', () => {
    assert.throws(
      () => resolveOption('sqliteWriter', 'fast'),
      /SQLITE_WRITER \(--sqlite-writer\): "fast" must be "thread" or "inline"/,
    );
    assert.throws(
      () => resolveOption('pollInterval', '0s'),
      /POLL_INTERVAL \(--poll-interval\): must be greater than 0/,
    );
    assert.throws(
      () => resolveOption('workerConcurrency', '0'),
      /WORKER_CONCURRENCY \(--worker-concurrency\): 0 is out of range; use 1 to 10000/,
    );
  });
});
