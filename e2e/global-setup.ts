import { startServer } from './server';
import { plaintextFound } from './scan';

export default async function globalSetup() {
  // 5 MB records: the records tests check the limit without writing 100 MB.
  const server = await startServer(['--max-record-mb', '5']);
  process.env.CHARTKEY_URL = server.url;
  process.env.CHARTKEY_DATA_DIR = server.dataDir;
  process.env.CHARTKEY_LOG_FILE = server.logFile;
  return async () => {
    // After every test: the plaintext scan once more, over all they left.
    const { files, found } = plaintextFound(server.dataDir, server.logFile);
    await server.stop();
    if (!files.some((f) => f.includes('blobs'))) throw new Error('plaintext scan: no blob store was written');
    if (found.length > 0) throw new Error(`plaintext found after the tests:\n${found.join('\n')}`);
    console.log(`plaintext scan after all tests: ${files.length} files, nothing found`);
  };
}
