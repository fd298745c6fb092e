import { startServer } from './server';

export default async function globalSetup() {
  // 5 MB records: the records tests check the limit without writing 100 MB.
  const server = await startServer(['--max-record-mb', '5']);
  process.env.CHARTKEY_URL = server.url;
  process.env.CHARTKEY_DATA_DIR = server.dataDir;
  process.env.CHARTKEY_LOG_FILE = server.logFile;
  return async () => {
    await server.stop();
  };
}
