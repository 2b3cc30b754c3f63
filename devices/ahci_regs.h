/* AHCI 1.3 register, FIS and command-list layouts (Serial ATA AHCI 1.3.1, sections 3 and 4). */
#ifndef MINIVMM_DEVICES_AHCI_REGS_H
#define MINIVMM_DEVICES_AHCI_REGS_H

/* Generic host control (ABAR + offset). */
#define AHCI_CAP 0x00
#define AHCI_GHC 0x04
#define AHCI_IS 0x08
#define AHCI_PI 0x0C
#define AHCI_VS 0x10
#define AHCI_CCC_CTL 0x14
#define AHCI_CCC_PORTS 0x18
#define AHCI_EM_LOC 0x1C
#define AHCI_EM_CTL 0x20
#define AHCI_CAP2 0x24
#define AHCI_BOHC 0x28
#define AHCI_PORT_BASE 0x100
#define AHCI_PORT_SIZE 0x80
#define AHCI_ABAR_SIZE 0x1000 /* room for 30 ports, a power of two */

#define AHCI_CAP_S64A (1u << 31)
#define AHCI_CAP_SNCQ (1u << 30)
#define AHCI_CAP_SAL (1u << 25)
#define AHCI_CAP_SCLO (1u << 24)
#define AHCI_CAP_ISS_GEN3 (3u << 20)
#define AHCI_CAP_SAM (1u << 18)
#define AHCI_CAP_NCS_SHIFT 8

#define AHCI_GHC_HR (1u << 0)
#define AHCI_GHC_IE (1u << 1)
#define AHCI_GHC_AE (1u << 31)

#define AHCI_VS_13 0x00010300u

/* Port registers (port base + offset). */
#define PORT_CLB 0x00
#define PORT_CLBU 0x04
#define PORT_FB 0x08
#define PORT_FBU 0x0C
#define PORT_IS 0x10
#define PORT_IE 0x14
#define PORT_CMD 0x18
#define PORT_TFD 0x20
#define PORT_SIG 0x24
#define PORT_SSTS 0x28
#define PORT_SCTL 0x2C
#define PORT_SERR 0x30
#define PORT_SACT 0x34
#define PORT_CI 0x38
#define PORT_SNTF 0x3C
#define PORT_FBS 0x40

#define PORT_IS_DHRS (1u << 0)	/* D2H register FIS */
#define PORT_IS_PSS (1u << 1)	/* PIO setup FIS */
#define PORT_IS_DSS (1u << 2)	/* DMA setup FIS */
#define PORT_IS_SDBS (1u << 3)	/* set device bits FIS */
#define PORT_IS_UFS (1u << 4)	/* unknown FIS */
#define PORT_IS_DPS (1u << 5)	/* descriptor processed */
#define PORT_IS_PCS (1u << 6)	/* port connect change */
#define PORT_IS_PRCS (1u << 22) /* PhyRdy change */
#define PORT_IS_OFS (1u << 24)	/* overflow */
#define PORT_IS_INFS (1u << 26) /* interface non-fatal */
#define PORT_IS_IFS (1u << 27)	/* interface fatal */
#define PORT_IS_HBDS (1u << 28) /* host bus data error */
#define PORT_IS_HBFS (1u << 29) /* host bus fatal */
#define PORT_IS_TFES (1u << 30) /* task file error */
#define PORT_IS_CPDS (1u << 31)
#define PORT_IS_VALID 0xFDC000FFu
#define PORT_IS_FATAL (PORT_IS_HBFS | PORT_IS_HBDS | PORT_IS_IFS | PORT_IS_TFES)

#define PORT_CMD_ST (1u << 0)
#define PORT_CMD_SUD (1u << 1)
#define PORT_CMD_POD (1u << 2)
#define PORT_CMD_CLO (1u << 3)
#define PORT_CMD_FRE (1u << 4)
#define PORT_CMD_CCS_SHIFT 8
#define PORT_CMD_CCS_MASK (0x1Fu << 8)
#define PORT_CMD_FR (1u << 14)
#define PORT_CMD_CR (1u << 15)
#define PORT_CMD_ATAPI (1u << 24)
#define PORT_CMD_ICC_MASK (0xFu << 28)
/* Bits software may change directly; the rest are status or self-clearing. */
#define PORT_CMD_WRITABLE                                                                          \
	(PORT_CMD_ST | PORT_CMD_SUD | PORT_CMD_POD | PORT_CMD_FRE | PORT_CMD_ATAPI)

#define PORT_SIG_ATA 0x00000101u
#define PORT_SIG_ATAPI 0xEB140101u

#define SSTS_DET_PRESENT 3u
#define SSTS_SPD_GEN3 (3u << 4)
#define SSTS_IPM_ACTIVE (1u << 8)
#define SCTL_DET_MASK 0xFu
#define SCTL_DET_COMRESET 1u
#define SCTL_DET_OFFLINE 4u /* disable the PHY */
#define SSTS_DET_OFFLINE 4u
#define SERR_DIAG_X (1u << 26) /* device exchanged: set when the link comes up */

/* FIS types. */
#define FIS_TYPE_REG_H2D 0x27
#define FIS_TYPE_REG_D2H 0x34
#define FIS_TYPE_DMA_SETUP 0x41
#define FIS_TYPE_PIO_SETUP 0x5F
#define FIS_TYPE_SDB 0xA1
#define FIS_H2D_C 0x80	  /* byte 1: command (1) or control (0) */
#define FIS_CTL_SRST 0x04 /* device control register */

/* Received-FIS area offsets. */
#define RFIS_DSFIS 0x00
#define RFIS_PSFIS 0x20
#define RFIS_RFIS 0x40
#define RFIS_SDBFIS 0x58
#define RFIS_SIZE 0x100

/* Command header (32 bytes at CLB + 32 * slot). */
#define CMDH_CFL_MASK 0x1Fu
#define CMDH_ATAPI (1u << 5)
#define CMDH_WRITE (1u << 6)
#define CMDH_RESET (1u << 8)
#define CMDH_CLR_BSY (1u << 10)
#define CMDH_SIZE 32
#define CMDT_CFIS 0x00
#define CMDT_ACMD 0x40
#define CMDT_PRDT 0x80
#define PRD_SIZE 16
#define PRD_DBC_MASK 0x3FFFFFu
#define PRD_INTR (1u << 31)

/* ATA commands the HBA itself looks at (the rest go to the ATA layer). */
#define ATA_CMD_READ_FPDMA_QUEUED 0x60
#define ATA_CMD_WRITE_FPDMA_QUEUED 0x61

#define AHCI_SLOTS 32
#define AHCI_MAX_PORTS 30

#endif
