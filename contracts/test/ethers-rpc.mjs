// An independent client reading Chartkey's JSON-RPC: ethers.js (v6) asks for
// the block number, a grant's transaction, receipt and block, the Granted
// logs, and checks the grant's EIP-712 signature with its own verifyTypedData.
// Prints what it found as JSON for the Rust test to compare.
//
// usage: node ethers-rpc.mjs <rpc url> <grant transaction hash>
// (CHARTKEY_RPC_TOKEN, when set, is sent as the bearer token /rpc asks for)

import { readFileSync } from "node:fs";
import { FetchRequest, Interface, JsonRpcProvider, TypedDataEncoder, verifyTypedData } from "ethers";

const [url, grantHash] = process.argv.slice(2);
if (!url || !grantHash) {
  console.error("usage: node ethers-rpc.mjs <rpc url> <grant transaction hash>");
  process.exit(2);
}
const artifact = JSON.parse(readFileSync(new URL("../artifacts/ChartkeyRecords.json", import.meta.url), "utf8"));
const records = new Interface(artifact.abi);
const request = new FetchRequest(url);
if (process.env.CHARTKEY_RPC_TOKEN) request.setHeader("Authorization", `Bearer ${process.env.CHARTKEY_RPC_TOKEN}`);
const provider = new JsonRpcProvider(request);

const network = await provider.getNetwork();
const blockNumber = await provider.getBlockNumber();
const tx = await provider.getTransaction(grantHash);
const receipt = await provider.getTransactionReceipt(grantHash);
const block = await provider.getBlock(receipt.blockNumber);
const granted = records.getEvent("Granted");
const logs = await provider.getLogs({ address: tx.to, topics: [granted.topicHash], fromBlock: 0, toBlock: "latest" });

const call = records.parseTransaction({ data: tx.data, value: tx.value });
const [patient, grantee, scope, categories, recordIds, write, expiresAt, nonce, signature] = call.args;
const domain = { name: "Chartkey Records", version: "1", chainId: network.chainId, verifyingContract: tx.to };
const types = {
  Grant: [
    { name: "patient", type: "address" },
    { name: "grantee", type: "address" },
    { name: "scope", type: "uint8" },
    { name: "categories", type: "uint32" },
    { name: "records", type: "bytes32[]" },
    { name: "write", type: "bool" },
    { name: "expiresAt", type: "uint64" },
    { name: "nonce", type: "uint256" },
  ],
};
const value = { patient, grantee, scope, categories, records: [...recordIds], write, expiresAt, nonce };

console.log(
  JSON.stringify({
    chainId: network.chainId.toString(),
    blockNumber,
    function: call.name,
    from: tx.from,
    receiptStatus: receipt.status,
    receiptBlockNumber: receipt.blockNumber,
    receiptBlockHash: receipt.blockHash,
    blockHash: block.hash,
    blockHasTransaction: block.transactions.includes(grantHash),
    logs: logs.map((log) => {
      const parsed = records.parseLog(log);
      return { transactionHash: log.transactionHash, patient: parsed.args.patient, grantee: parsed.args.grantee };
    }),
    patient,
    signer: verifyTypedData(domain, types, value, signature),
    digest: TypedDataEncoder.hash(domain, types, value),
  }),
);
