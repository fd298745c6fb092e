import { startServer } from './server';

export default async function globalSetup() {
  const server = await startServer();
  process.env.CHARTKEY_URL = server.url;
  process.env.CHARTKEY_DATA_DIR = server.dataDir;
  return async () => {
    await server.stop();
  };
}
