import { describe, expect, it } from 'vitest';
import { DEFAULT_ACCEPT_ENV, envAccepted, sessionEnv } from './env.js';

describe('envAccepted', () => {
  it('accepts locale, terminal and VS Code variables and refuses what changes program loading', () => {
    for (const name of ['LANG', 'LC_ALL', 'LC_CTYPE', 'TERM', 'COLORTERM', 'VSCODE_AGENT_FOLDER', 'TZ']) {
      expect(envAccepted(name, DEFAULT_ACCEPT_ENV)).toBe(true);
    }
    for (const name of ['PATH', 'LD_PRELOAD', 'BASH_ENV', 'HOME', 'PYTHONPATH', 'LC-X', '']) {
      expect(envAccepted(name, DEFAULT_ACCEPT_ENV)).toBe(false);
    }
  });
});

describe('sessionEnv', () => {
  it('always describes the account, whatever the client or the agent sent', () => {
    const env = sessionEnv(
      'alice',
      { uid: 1, gid: 1, home: '/home/alice', shell: '/bin/bash', env: { PATH: '/opt/conda/bin:/usr/bin', HOME: '/wrong' } },
      '/usr/bin:/bin',
      { LANG: 'de_DE.UTF-8', USER: 'mallory' },
    );
    expect(env).toMatchObject({ HOME: '/home/alice', USER: 'alice', LOGNAME: 'alice', SHELL: '/bin/bash', PATH: '/opt/conda/bin:/usr/bin', LANG: 'de_DE.UTF-8' });
  });
});
